"""Shared fixtures: one embedded simulator per test module on the built-in OccTown01 (no NPC traffic)."""

from __future__ import annotations

from collections.abc import Iterator

import carla
import pytest

from sim.protocol import SimConfig, TrafficConfig

# OccTown01 places used by the tests (CARLA frame, yaw 90 = heading south = +y):
# a 75 m straight stretch of First St S (road 20, lane -1), junction C12 behind, T-junction ahead at y ~ 290
STRAIGHT_TRIGGER = carla.Transform(carla.Location(98.25, 215.0, 0.0), carla.Rotation(yaw=90.0))
# First St, 45 m before the signalised 4-way junction C11 at (100, 100)
JUNCTION_TRIGGER = carla.Transform(carla.Location(98.25, 45.0, 0.0), carla.Rotation(yaw=90.0))


@pytest.fixture(scope="module")
def town_sim() -> Iterator:
    """(sim, cmap) with the ego parked far from both trigger points; closed at the end of the module."""
    from sim.factory import make_simulator

    sim = make_simulator("embedded", SimConfig(seed=0, traffic=TrafficConfig(vehicles=0, walkers=0)))
    cmap = sim.load_town("OccTown01")
    sim.spawn_ego(carla.Transform(carla.Location(-1.75, 150.0, 0.5), carla.Rotation(yaw=90.0)))
    sim.tick()
    try:
        yield sim, cmap
    finally:
        sim.close()
