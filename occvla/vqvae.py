"""OccWorld-style occupancy VQ-VAE: a 3D semantic grid <-> a 2D grid of discrete codes.

Why this shape: OccVLA's occupancy branch predicts a *latent* bird's-eye grid and lets a frozen decoder turn it into
per-voxel classes, so the decoder must be good before OccVLA trains (stage 0). Following OccWorld, each voxel class
is embedded (``class_embed_dim``), the height axis is folded into channels, and a plain 2D conv net encodes the
(X, Y) plane, downsampling by ``downsample``. A codebook quantises each latent cell.

Conventions (owner's decisions; the label format is DESIGN.md's Occ3D one):
- Input ``sem`` is a LongTensor (B, X, Y, Z) of Occ3D classes 0..num_classes-1 (17 = free), indexed [x, y, z].
- ``hidden[i]`` is the channel width after the i-th 2x downsampling (``hidden[0]`` at full resolution); if there are
  fewer entries than levels the last one repeats.
- The codebook is updated by EMA (``ema=True``, no gradient to the codes) or by the usual codebook + commitment
  losses with the straight-through estimator (``ema=False``). EMA statistics change only in ``train()`` mode: keep
  the module in ``eval()`` when it is frozen inside OccVLA.
- Dead codes (EMA usage below ``dead_code_threshold``) restart from random encoder outputs of the current batch.
- ``decode`` accepts any (B, C, h, w) tensor (quantised or not): OccVLA feeds its predicted latents through it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


@dataclass
class VQVAEConfig:
    """Sizes of the occupancy VQ-VAE (defaults: Occ3D full grid, OccWorld-like)."""

    grid: tuple[int, int, int] = (200, 200, 16)  # (X, Y, Z) voxels
    num_classes: int = 18  # Occ3D: 0..16 semantic, 17 free
    class_embed_dim: int = 8
    latent_dim: int = 64  # C of the latent grid
    downsample: int = 4  # X/h = Y/w; a power of 2
    codebook_size: int = 512
    hidden: tuple[int, ...] = (64, 128)
    num_res_blocks: int = 1
    ema: bool = True
    ema_decay: float = 0.99
    commitment: float = 0.25
    dead_code_threshold: float = 0.01  # EMA usage (expected hits per step) below which a code restarts; 0 = off
    free_class_weight: float = 1.0  # cross-entropy weight of the free class (17); <1 counters its dominance
    extra: dict = field(default_factory=dict)  # free-form notes saved with the weights

    def __post_init__(self) -> None:
        self.grid = tuple(int(g) for g in self.grid)  # type: ignore[assignment]
        self.hidden = tuple(int(h) for h in self.hidden)
        if len(self.grid) != 3 or min(self.grid) <= 0:
            raise ValueError(f"VQVAEConfig.grid must be three positive ints (X, Y, Z), got {self.grid}")
        ds = int(self.downsample)
        if ds < 1 or ds & (ds - 1):
            raise ValueError(f"VQVAEConfig.downsample must be a power of 2, got {self.downsample}")
        if self.grid[0] % ds or self.grid[1] % ds:
            raise ValueError(f"VQVAEConfig.grid {self.grid} (X, Y) is not divisible by downsample={ds}")
        if not self.hidden or min(self.hidden) <= 0:
            raise ValueError(f"VQVAEConfig.hidden must be positive channel widths, got {self.hidden}")
        if self.num_classes < 2 or self.codebook_size < 2:
            raise ValueError(
                f"VQVAEConfig needs num_classes>=2 and codebook_size>=2, "
                f"got {self.num_classes} and {self.codebook_size}"
            )

    @property
    def num_levels(self) -> int:
        """Number of 2x downsampling steps."""
        return int(math.log2(self.downsample))

    def width(self, level: int) -> int:
        """Channel width at a resolution level (0 = full)."""
        return self.hidden[min(level, len(self.hidden) - 1)]

    @classmethod
    def from_dict(cls, d: dict) -> VQVAEConfig:
        """Build from a plain dict (e.g. a YAML node); unknown keys raise a one-line error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown VQVAEConfig keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)


def _groups(ch: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv x2 with a skip (a 1x1 conv when widths differ)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(cin), cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(_groups(cout), cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Encoder2D(nn.Module):
    """(B, Z*E, X, Y) -> (B, C, X/ds, Y/ds)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        cin = cfg.grid[2] * cfg.class_embed_dim
        self.stem = nn.Conv2d(cin, cfg.width(0), 3, padding=1)
        layers: list[nn.Module] = []
        ch = cfg.width(0)
        for level in range(cfg.num_levels + 1):
            out = cfg.width(level)
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(ch, out))
                ch = out
            if level < cfg.num_levels:
                layers.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # 2x down
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv2d(ch, cfg.latent_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


class Decoder2D(nn.Module):
    """(B, C, h, w) -> (B, Z*E, h*ds, w*ds)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        ch = cfg.width(cfg.num_levels)
        self.stem = nn.Conv2d(cfg.latent_dim, ch, 3, padding=1)
        layers: list[nn.Module] = []
        for level in range(cfg.num_levels, -1, -1):
            out = cfg.width(level)
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(ch, out))
                ch = out
            if level > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        cout = cfg.grid[2] * cfg.class_embed_dim
        self.head = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv2d(ch, cout, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(z)))


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser with EMA or gradient codebook updates and dead-code restarts."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, c = cfg.codebook_size, cfg.latent_dim
        init = torch.randn(k, c) * 0.1  # (K, C)
        if cfg.ema:
            self.register_buffer("embedding", init)
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("cluster_size", torch.zeros(k))
        self.register_buffer("embed_avg", self.embedding.detach().clone())
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(t)
        return t

    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        """Seed the codebook with encoder outputs of the first training batch (avoids a dead codebook)."""
        idx = torch.randint(0, flat.shape[0], (self.cfg.codebook_size,), device=flat.device)
        data = flat[idx] + 1e-3 * torch.randn_like(flat[idx])  # (K, C)
        self.embedding.data.copy_(data)
        self.embed_avg.copy_(data)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor) -> None:
        d = self.cfg.ema_decay
        counts = self._all_reduce(onehot.sum(0))  # (K,)
        sums = self._all_reduce(onehot.t() @ flat)  # (K, C)
        self.cluster_size.mul_(d).add_(counts, alpha=1 - d)
        self.embed_avg.mul_(d).add_(sums, alpha=1 - d)
        n = self.cluster_size.sum()
        k = self.cfg.codebook_size
        smoothed = (self.cluster_size + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing
        self.embedding.data.copy_(self.embed_avg / smoothed.unsqueeze(1))

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor) -> None:
        thr = self.cfg.dead_code_threshold
        if thr <= 0:
            return
        dead = self.cluster_size < thr
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        idx = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
        new = flat[idx]  # (n_dead, C)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, 0)
        self.embedding.data[dead] = new
        self.embed_avg[dead] = new
        self.cluster_size[dead] = 1.0

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, c, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, c)  # (B*h*w, C)
        if self.training and not bool(self.initialized):
            self._init_from_data(flat.detach().float())
        emb = self.embedding  # (K, C)
        dist2 = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ emb.t() + emb.pow(2).sum(1)[None, :]
        )  # (B*h*w, K)
        indices = dist2.argmin(1)  # (B*h*w,)
        z_q_flat = F.embedding(indices, emb)  # (B*h*w, C)
        if self.training:
            onehot = F.one_hot(indices, self.cfg.codebook_size).type(flat.dtype)  # (B*h*w, K)
            if self.cfg.ema:
                self._ema_update(flat.detach().float(), onehot.float())
            else:
                with torch.no_grad():
                    self.cluster_size.mul_(self.cfg.ema_decay).add_(
                        self._all_reduce(onehot.sum(0)), alpha=1 - self.cfg.ema_decay
                    )
            self._restart_dead(flat.detach().float())
        z_q = z_q_flat.view(b, h, w, c).permute(0, 3, 1, 2)  # (B, C, h, w)
        loss = self.cfg.commitment * F.mse_loss(z_e, z_q.detach())
        if not self.cfg.ema:
            loss = loss + F.mse_loss(z_q, z_e.detach())
        z_q = z_e + (z_q - z_e).detach()  # straight-through
        return z_q, indices.view(b, h, w), loss


class OccVQVAE(nn.Module):
    """Occupancy VQ-VAE: ``encode`` -> ``quantize`` -> ``decode`` (see module docstring)."""

    def __init__(self, cfg: VQVAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or VQVAEConfig()
        c = self.cfg
        self.class_embed = nn.Embedding(c.num_classes, c.class_embed_dim)
        self.encoder = Encoder2D(c)
        self.quantizer = VectorQuantizer(c)
        self.decoder = Decoder2D(c)
        self.classifier = nn.Conv2d(c.class_embed_dim, c.num_classes, 1)  # shared over heights
        w = torch.ones(c.num_classes)
        w[c.num_classes - 1] = c.free_class_weight
        self.register_buffer("class_weight", w, persistent=False)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the latent grid."""
        c = self.cfg
        return (c.latent_dim, c.grid[0] // c.downsample, c.grid[1] // c.downsample)

    def _check_sem(self, sem: torch.Tensor) -> None:
        if sem.dim() != 4 or tuple(sem.shape[1:]) != self.cfg.grid:
            raise ValueError(f"OccVQVAE expects sem of shape (B, {', '.join(map(str, self.cfg.grid))}), "
                             f"got {tuple(sem.shape)}")
        if sem.dtype.is_floating_point:
            raise ValueError(f"OccVQVAE expects integer class labels, got dtype {sem.dtype}")

    def encode(self, sem: torch.Tensor) -> torch.Tensor:
        """(B, X, Y, Z) long -> z_e (B, C, X/ds, Y/ds)."""
        self._check_sem(sem)
        b, x, y, z = sem.shape
        e = self.class_embed(sem.long())  # (B, X, Y, Z, E)
        e = e.permute(0, 3, 4, 1, 2).reshape(b, z * self.cfg.class_embed_dim, x, y)  # (B, Z*E, X, Y)
        return self.encoder(e)

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_e (B, C, h, w) -> (z_q (B, C, h, w) straight-through, indices (B, h, w), vq_loss scalar)."""
        return self.quantizer(z_e)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, h, w) -> logits (B, num_classes, X, Y, Z)."""
        c = self.cfg
        if z.dim() != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"OccVQVAE.decode expects z of shape (B, {', '.join(map(str, self.latent_shape))}), "
                             f"got {tuple(z.shape)}")
        b = z.shape[0]
        x, y, zz = c.grid
        f = self.decoder(z)  # (B, Z*E, X, Y)
        f = f.view(b, zz, c.class_embed_dim, x, y).transpose(1, 2)  # (B, E, Z, X, Y)
        f = f.reshape(b, c.class_embed_dim, zz * x, y)  # (B, E, Z*X, Y)
        logits = self.classifier(f).view(b, c.num_classes, zz, x, y)  # (B, K, Z, X, Y)
        return logits.permute(0, 1, 3, 4, 2)  # (B, K, X, Y, Z)

    def reconstruction_loss(
        self, logits: torch.Tensor, sem: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Voxel cross-entropy (free class weighted by ``free_class_weight``), over ``mask`` when given."""
        ce = F.cross_entropy(logits, sem.long(), weight=self.class_weight.to(logits.dtype), reduction="none")
        if mask is None:
            return ce.mean()
        m = mask.to(ce.dtype)
        return (ce * m).sum() / m.sum().clamp_min(1.0)

    def forward(self, sem: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Full autoencoding pass. Returns logits (B, K, X, Y, Z), loss, rec_loss, vq_loss, perplexity, indices."""
        z_e = self.encode(sem)  # (B, C, h, w)
        z_q, indices, vq_loss = self.quantize(z_e)
        logits = self.decode(z_q)  # (B, K, X, Y, Z)
        rec = self.reconstruction_loss(logits, sem, mask)
        with torch.no_grad():
            p = torch.bincount(indices.flatten(), minlength=self.cfg.codebook_size).float()
            p = p / p.sum()
            perplexity = torch.exp(-(p * (p + 1e-10).log()).sum())
        return {
            "logits": logits,
            "loss": rec + vq_loss,
            "rec_loss": rec.detach(),
            "vq_loss": vq_loss.detach(),
            "perplexity": perplexity,
            "indices": indices,
        }

    # ---- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write weights + config (in the safetensors metadata) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file(state, str(tmp), metadata={"vqvae_config": json.dumps(asdict(self.cfg))})
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, map_location: str = "cpu") -> OccVQVAE:
        """Load a VQ-VAE written by ``save`` (config from the file's metadata)."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VQ-VAE weights not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # noqa: BLE001 - corrupt header, any error type
            raise ValueError(f"cannot read VQ-VAE safetensors file {path}: {e}") from None
        if "vqvae_config" not in meta:
            raise ValueError(f"{path} has no 'vqvae_config' metadata; was it written by OccVQVAE.save?")
        model = cls(VQVAEConfig.from_dict(json.loads(meta["vqvae_config"])))
        state = load_file(str(path), device=map_location)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not match its config: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return model.to(map_location)
