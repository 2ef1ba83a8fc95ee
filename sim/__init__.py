"""Simulator backends behind one protocol, and the gymnasium env."""
