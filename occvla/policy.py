"""OccVLAPolicy: inference on one sample: six images + speed + command -> meta-action text + waypoints.

The occupancy branch is skipped unless ``return_occupancy=True``: no hidden states are kept and neither the
queries nor the VQ-VAE decoder run, so predicting costs the same as a model built without the branch
(``benchmarks/model_latency.py`` measures the ratio).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from occvla.model import OccVLAModel
from occvla.processor import OccVLAProcessor
from occvla.run_dir import load_run_dir


@dataclass
class PolicyOutput:
    """One prediction. ``waypoints`` (6, 2) ego frame (x forward, y left), metres, at 0.5 s .. 3.0 s;
    ``occupancy`` (X, Y, Z) uint8 Occ3D classes (17 = free) when asked for."""

    meta_action: str
    waypoints: np.ndarray
    occupancy: np.ndarray | None = None


class OccVLAPolicy:
    """A trained OccVLA model + its processor, ready to drive."""

    def __init__(self, model: OccVLAModel, processor: OccVLAProcessor, bf16: bool | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.bf16 = model.config.inference_bf16 if bf16 is None else bf16
        self.device = next(model.parameters()).device

    @classmethod
    def from_run_dir(cls, path: str | Path, device: str = "cpu", bf16: bool | None = None) -> OccVLAPolicy:
        """Load a run directory written by ``occvla.run_dir.save_run_dir`` (LoRA merged)."""
        model, processor, _ = load_run_dir(path)
        return cls(model.to(device), processor, bf16=bf16)

    @torch.inference_mode()
    def predict(
        self,
        images: np.ndarray,
        speed: float,
        command: int,
        return_occupancy: bool = False,
        route: np.ndarray | None = None,
    ) -> PolicyOutput:
        """images (6, H, W, 3) uint8 RGB in camera order; speed m/s; command a CARLA RoadOption value; route the
        plan points (3, 2) in the ego frame (``RouteCommands.route_points``), for a model with planner.route_input."""
        sample = {"images": images, "speed": speed, "command": command, "route": route}
        batch = self.processor([sample], train=False)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            gen = self.model.generate(
                batch,
                self.processor.meta_action_ids,
                return_occupancy=return_occupancy,
                pad_id=self.processor.pad_id,
            )
        occ = None
        if gen.occ_logits is not None:
            occ = gen.occ_logits[0].argmax(0).to(torch.uint8).cpu().numpy()  # (X, Y, Z)
        return PolicyOutput(
            meta_action=self.processor.decode(gen.token_ids[0]),
            waypoints=gen.waypoints[0].float().cpu().numpy(),
            occupancy=occ,
        )
