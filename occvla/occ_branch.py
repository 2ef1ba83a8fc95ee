"""Occupancy branch: learnable queries cross-attend to LM image-token hidden states -> VQ-VAE latent grid.

Why this way (OccVLA): the occupancy supervision must reach the vision tower and the LM adapters, yet inference
must be free to skip it. So the queries read the image-token hidden states of one LM layer (keys/values) and the
LM never sees the queries: h_img does not depend on h_occ, and dropping the branch changes no other output.
One query per cell of the VQ-VAE latent grid (h, w); the frozen VQ-VAE decoder turns the predicted (C, h, w)
latent into per-voxel class logits, and the loss is on those final classes (cross-entropy, optional Lovasz).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from occvla.config import OccConfig


class _Attention(nn.Module):
    """Multi-head attention (queries x, keys/values kv) on torch SDPA."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (B, H, Nq, d)
        k, v = self.kv(kv).view(b, kv.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 x (B, H, Nk, d)
        o = F.scaled_dot_product_attention(q, k, v)  # (B, H, Nq, d)
        return self.out(o.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    """[self-attention] + cross-attention to the visual tokens + MLP, pre-norm residual."""

    def __init__(self, dim: int, heads: int, self_attention: bool) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, heads) if self_attention else None
        self.norm_sa = nn.LayerNorm(dim) if self_attention else None
        self.norm_q = nn.LayerNorm(dim)
        self.cross = _Attention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        if self.self_attn is not None:
            y = self.norm_sa(x)
            x = x + self.self_attn(y, y)
        x = x + self.cross(self.norm_q(x), mem)
        return x + self.mlp(self.norm_mlp(x))


class OccupancyBranch(nn.Module):
    """(B, Nv, D_lm) image-token hidden states -> (B, C, h, w) latent for the VQ-VAE decoder."""

    def __init__(
        self, cfg: OccConfig, lm_hidden: int, num_visual_tokens: int, latent_shape: tuple[int, int, int]
    ):
        super().__init__()
        c, h, w = latent_shape
        d = cfg.hidden_size
        self.latent_shape = (c, h, w)
        self.mem_norm = nn.LayerNorm(lm_hidden)
        self.mem_proj = nn.Linear(lm_hidden, d)
        # Which camera/patch a key came from: LM hidden states carry position only implicitly (RoPE acts inside
        # attention), and the geometry of the grid depends on it.
        self.mem_pos = nn.Parameter(torch.randn(num_visual_tokens, d) * 0.02)  # (Nv, d)
        self.queries = nn.Parameter(torch.randn(h * w, d) * 0.02)  # (h*w, d), one per latent cell
        self.blocks = nn.ModuleList(
            _Block(d, cfg.num_heads, cfg.self_attention) for _ in range(cfg.num_layers)
        )
        self.out_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, c)

    def forward(self, visual_hidden: torch.Tensor) -> torch.Tensor:
        b, nv, _ = visual_hidden.shape
        if nv != self.mem_pos.shape[0]:
            raise ValueError(f"occupancy branch expects {self.mem_pos.shape[0]} visual tokens, got {nv}")
        mem = self.mem_proj(self.mem_norm(visual_hidden)) + self.mem_pos  # (B, Nv, d)
        x = self.queries.unsqueeze(0).expand(b, -1, -1)  # (B, h*w, d)
        for blk in self.blocks:
            x = blk(x, mem)
        c, h, w = self.latent_shape
        z = self.out(self.out_norm(x))  # (B, h*w, C)
        return z.transpose(1, 2).reshape(b, c, h, w)  # (B, C, h, w)


def lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax surrogate of (1 - IoU) averaged over classes present in ``labels``.

    Args:
        probs: (N, K) class probabilities of N voxels.
        labels: (N,) class ids.
    """
    losses = []
    for k in range(probs.shape[1]):
        fg = (labels == k).to(probs.dtype)  # (N,)
        if fg.sum() == 0:
            continue
        err = (fg - probs[:, k]).abs()
        err_sorted, order = torch.sort(err, descending=True)
        fg_sorted = fg[order]
        gts = fg_sorted.sum()
        inter = gts - fg_sorted.cumsum(0)
        union = gts + (1.0 - fg_sorted).cumsum(0)
        jac = 1.0 - inter / union  # (N,) Jaccard loss of each prefix
        grad = torch.cat([jac[:1], jac[1:] - jac[:-1]])
        losses.append(torch.dot(err_sorted, grad))
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def occupancy_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, lovasz_weight: float = 0.0
) -> torch.Tensor:
    """Cross-entropy (+ ``lovasz_weight`` * Lovasz-softmax) on final voxel classes, over ``mask`` when given.

    Args:
        logits: (B, K, X, Y, Z) per-voxel class logits.
        target: (B, X, Y, Z) class ids.
        mask: (B, X, Y, Z) bool, e.g. Occ3D ``mask_camera`` (voxels visible to the cameras).
    """
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"occupancy target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}"
        )
    flat = logits.float().permute(0, 2, 3, 4, 1).reshape(-1, logits.shape[1])  # (N, K)
    tgt = target.reshape(-1).long()  # (N,)
    if mask is not None:
        keep = mask.reshape(-1).bool()
        flat, tgt = flat[keep], tgt[keep]
    if tgt.numel() == 0:
        return logits.sum() * 0.0
    loss = F.cross_entropy(flat, tgt)
    if lovasz_weight > 0:
        loss = loss + lovasz_weight * lovasz_softmax(flat.softmax(-1), tgt)
    return loss
