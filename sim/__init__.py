"""Simulator backends behind one protocol, and the gymnasium env."""

from sim.factory import make_simulator
from sim.protocol import SimConfig, Simulator, SimulatorError, TownNotFoundError, TrafficConfig

__all__ = ["SimConfig", "Simulator", "SimulatorError", "TownNotFoundError", "TrafficConfig", "make_simulator"]


def _register_envs() -> None:
    import gymnasium

    if "occvla/Drive-v0" not in gymnasium.registry:
        gymnasium.register(id="occvla/Drive-v0", entry_point="sim.env:DriveEnv", max_episode_steps=None)


_register_envs()
