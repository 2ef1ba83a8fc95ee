"""Planning head: an MLP regressing 6 ego-frame waypoints (x forward, y left, metres; 0.5 s .. 3.0 s).

Inputs (OccVLA): the LM's final hidden state at the last meta-action token (what the model decided to do), the ego
velocity (how fast it is going), and pooled visual tokens (what it sees): each camera's image-token states averaged
over a ``visual_grid`` x ``visual_grid`` grid, which keeps which camera sees what (front/back/left/right) and, from
2 up, where in the image (the kerb on the left or the right) that lane keeping depends on.

With ``route_input`` the head also reads the route as the leaderboard gives it to an agent (the sparse GPS plan):
the plan point where the ego's segment starts and the next two, in the ego frame. Closed-loop CARLA agents read
these "target points" (TransFuser, TCP, CarLLaVA); nuScenes' open-loop setting, where the paper works, has only
the command. ``route_features`` turns them into what is hard for a small MLP to compute with precision: the ego's
signed offset from the segment's line and the directions of this segment and the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from occvla.config import PlannerConfig


WAYPOINT_DT = 0.5  # s between waypoints (0.5 s .. 3.0 s)
# The plans a leaderboard gives an agent: 1.0 keeps a point every 50 m, 2.x every 200 m (both keep every turn and
# lane change). Collected data store the route points on both, so a head trains for either.
ROUTE_PLAN_SPACINGS = (50.0, 200.0)
ROUTE_POINTS = 3  # the start of the ego's plan segment and the next two points
ROUTE_FEATURES = 2 * ROUTE_POINTS + 5
ROUTE_SCALE_M = 50.0  # metres per unit of a route point's coordinates (clamped to +-4 units)
ROUTE_OFFSET_CLAMP_M = 5.0


def _direction(v: torch.Tensor) -> torch.Tensor:
    """Unit vectors of (B, 2) vectors; (1, 0) where a vector is shorter than 0.1 m (the route's end)."""
    n = v.norm(dim=-1, keepdim=True)  # (B, 1)
    ahead = torch.tensor([1.0, 0.0], dtype=v.dtype, device=v.device).expand_as(v)
    return torch.where(n > 0.1, v / n.clamp_min(0.1), ahead)


def route_features(route: torch.Tensor) -> torch.Tensor:
    """(B, 3, 2) plan points in the ego frame -> (B, ROUTE_FEATURES): the scaled points, the ego's signed offset
    from the line of its segment (metres / 2, + = ego left of it), the segment's and the next segment's directions."""
    a, b, c = route.unbind(1)  # (B, 2) each
    u = _direction(b - a)  # (B, 2) this segment's direction
    offset = u[:, 1] * a[:, 0] - u[:, 0] * a[:, 1]  # (B,) cross(u, ego - a), ego at the origin
    pts = (route / ROUTE_SCALE_M).clamp(-4.0, 4.0).flatten(1)  # (B, 6)
    off = offset.clamp(-ROUTE_OFFSET_CLAMP_M, ROUTE_OFFSET_CLAMP_M)[:, None] / 2.0  # (B, 1)
    return torch.cat([pts, off, u, _direction(c - b)], dim=-1)  # (B, 11)


class PlanningHead(nn.Module):
    """(meta hidden (B, D), ego velocity (B, 2), visual (B, V*g*g, D)[, route (B, 3, 2)]) -> waypoints (B, W, 2)
    in metres."""

    def __init__(self, cfg: PlannerConfig, lm_hidden: int, num_cameras: int, num_waypoints: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_waypoints = num_waypoints
        self.meta_norm = nn.LayerNorm(lm_hidden)
        self.vis_norm = nn.LayerNorm(lm_hidden)
        self.vis_proj = nn.Linear(lm_hidden, cfg.visual_dim)
        dim = lm_hidden + 2 + num_cameras * cfg.visual_grid**2 * cfg.visual_dim
        dim += ROUTE_FEATURES if cfg.route_input else 0
        layers: list[nn.Module] = []
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(dim, cfg.hidden_size), nn.GELU()]
            dim = cfg.hidden_size
        layers.append(nn.Linear(dim, 2 * num_waypoints))
        self.mlp = nn.Sequential(*layers)

    def forward(
        self,
        meta_hidden: torch.Tensor,
        ego_velocity: torch.Tensor,
        visual: torch.Tensor,
        route: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = meta_hidden.shape[0]
        vis = self.vis_proj(self.vis_norm(visual)).reshape(b, -1)  # (B, V*g*g*visual_dim)
        vel = ego_velocity.to(meta_hidden.dtype) / self.cfg.velocity_scale  # (B, 2)
        parts = [self.meta_norm(meta_hidden), vel, vis]
        if self.cfg.route_input:
            if route is None:
                raise ValueError("this planning head reads the route (planner.route_input): pass the route's plan "
                                 "points (B, 3, 2) in the ego frame")
            parts.append(route_features(route.float()).to(meta_hidden.dtype))  # (B, 11)
        x = torch.cat(parts, dim=-1)  # (B, D + 2 + V*g*g*visual_dim [+ 11])
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
