"""Planning head: an MLP regressing 6 ego-frame waypoints (x forward, y left, metres; 0.5 s .. 3.0 s).

Inputs (OccVLA): the LM's final hidden state at the last meta-action token (what the model decided to do), the ego
velocity (how fast it is going), and pooled visual tokens (what it sees): each camera's image-token states averaged
over a ``visual_grid`` x ``visual_grid`` grid, which keeps which camera sees what (front/back/left/right) and, from
2 up, where in the image (the kerb on the left or the right) that lane keeping depends on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from occvla.config import PlannerConfig


WAYPOINT_DT = 0.5  # s between waypoints (0.5 s .. 3.0 s)


class PlanningHead(nn.Module):
    """(meta hidden (B, D), ego velocity (B, 2), visual (B, V*g*g, D)) -> waypoints (B, W, 2) in metres."""

    def __init__(self, cfg: PlannerConfig, lm_hidden: int, num_cameras: int, num_waypoints: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_waypoints = num_waypoints
        self.meta_norm = nn.LayerNorm(lm_hidden)
        self.vis_norm = nn.LayerNorm(lm_hidden)
        self.vis_proj = nn.Linear(lm_hidden, cfg.visual_dim)
        dim = lm_hidden + 2 + num_cameras * cfg.visual_grid**2 * cfg.visual_dim
        layers: list[nn.Module] = []
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(dim, cfg.hidden_size), nn.GELU()]
            dim = cfg.hidden_size
        layers.append(nn.Linear(dim, 2 * num_waypoints))
        self.mlp = nn.Sequential(*layers)

    def forward(
        self, meta_hidden: torch.Tensor, ego_velocity: torch.Tensor, visual: torch.Tensor
    ) -> torch.Tensor:
        b = meta_hidden.shape[0]
        vis = self.vis_proj(self.vis_norm(visual)).reshape(b, -1)  # (B, V*g*g*visual_dim)
        vel = ego_velocity.to(meta_hidden.dtype) / self.cfg.velocity_scale  # (B, 2)
        x = torch.cat([self.meta_norm(meta_hidden), vel, vis], dim=-1)  # (B, D + 2 + V*g*g*visual_dim)
        out = self.mlp(x).view(b, self.num_waypoints, 2) * self.cfg.output_scale  # (B, W, 2)
        if self.cfg.kinematic_prior:
            t = WAYPOINT_DT * torch.arange(1, self.num_waypoints + 1, device=out.device, dtype=out.dtype)  # (W,)
            out = out + ego_velocity.to(out.dtype)[:, None, :] * t[None, :, None]  # + constant-velocity rollout
        return out


def planning_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 over waypoints and coordinates (metres), robust to the occasional bad expert label."""
    if pred.shape != target.shape:
        raise ValueError(
            f"trajectory shape {tuple(target.shape)} does not match prediction {tuple(pred.shape)}"
        )
    return F.l1_loss(pred.float(), target.float())
