"""Training machinery behind ``occvla-train`` (entry point: occvla/train.py)."""
