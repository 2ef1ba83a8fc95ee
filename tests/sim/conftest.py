from pathlib import Path

import pytest

SHARED_MAPS = Path(__file__).resolve().parents[3] / "shared" / "carla" / "maps"


@pytest.fixture(scope="session")
def carla_map_dir() -> Path:
    """CARLA's Town01 (../shared/carla/maps): shared with us for tests, never committed."""
    if not (SHARED_MAPS / "Town01.xodr").exists():
        pytest.skip("CARLA Town01.xodr not available (../shared/carla/maps)")
    return SHARED_MAPS
