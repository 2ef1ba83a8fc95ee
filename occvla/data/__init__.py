"""OccVLA data: a nuScenes-layout + Occ3D reader, a synthetic dataset writer, occupancy pooling, rule-based QA."""

from occvla.data.nuscenes import CAMERAS, NuScenesOccDataset, command_from_trajectory, find_version
from occvla.data.occupancy import (
    OCC3D_GRID,
    load_occ3d_labels,
    occ3d_label_path,
    pool_occupancy,
    pool_occupancy_to,
    save_occ3d_labels,
)
from occvla.data.qa import generate_qa
from occvla.data.synthetic import make_synthetic_dataset

__all__ = [
    "CAMERAS", "OCC3D_GRID", "NuScenesOccDataset", "command_from_trajectory", "find_version", "generate_qa",
    "load_occ3d_labels", "make_synthetic_dataset", "occ3d_label_path", "pool_occupancy", "pool_occupancy_to",
    "save_occ3d_labels",
]
