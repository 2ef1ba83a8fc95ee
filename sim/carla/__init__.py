"""The real-CARLA backend (needs a running CARLA server)."""
