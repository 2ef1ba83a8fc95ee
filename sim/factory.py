"""Build a simulator backend by name: 'embedded' (default, in-process) or 'carla' (a running server)."""

from __future__ import annotations

from sim.protocol import SimConfig, Simulator, SimulatorError

BACKENDS = ("embedded", "carla")


def make_simulator(kind: str = "embedded", config: SimConfig | None = None, host: str = "localhost",
                   port: int = 2000, timeout: float = 10.0, traffic_manager_port: int = 8000) -> Simulator:
    if kind == "embedded":
        from sim.embedded.world import EmbeddedSimulator

        return EmbeddedSimulator(config)
    if kind == "carla":
        try:
            from sim.carla.backend import CarlaSimulator
        except ImportError as exc:  # pragma: no cover - depends on the optional backend module
            raise SimulatorError(f"the CARLA backend is not available: {exc}") from exc
        return CarlaSimulator(config, host=host, port=port, timeout=timeout,
                              traffic_manager_port=traffic_manager_port)
    raise SimulatorError(f"unknown simulator '{kind}' (choose from: {', '.join(BACKENDS)})")
