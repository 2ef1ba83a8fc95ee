"""OccVLA configuration: one dataclass tree, three presets, strict loading from dicts/YAML.

Why dataclasses and not a transformers config: the run directory stores this tree as plain YAML (readable, diffable),
and an unknown key anywhere is an error naming the key, so a typo in a hydra override never silently does nothing.

Presets (parameters counted by tests/occvla/test_model.py):
- ``tiny``: 5.29M parameters, six 64 px cameras (patch 16: 16 tokens each), a pooled 16x16x8 occupancy grid; for
  tests (overfits one sample in ~100 steps).
- ``small``: 25.2M parameters (22.6M without the occupancy branch + its VQ-VAE), six 112 px cameras (patch 14, 2x2
  token pool: 16 tokens each, 96 per sample), pooled 50x50x16 grid; trainable on 2 CPU cores.
- ``paper``: PaliGemma2-3B-224 shapes (SigLIP So400m/14 + Gemma2-2B, 3.032B) + heads = 3.05B, full 200x200x16
  grid (50x50x128 latent); loads a local checkpoint when ``pretrained_path`` is set.

Choices for the small presets, measured on the 2-core AMD EPYC (AVX2, no AVX512-BF16/AMX) CPU, shared with other
jobs (so +-20%), one sample, greedy 2-token meta-action + planner:
- Gemma (v1, SDPA) rather than Gemma2 (eager only in transformers 5.x): predict 225 vs 251 ms (1 thread); LM alone
  at 400 tokens 133 vs 172 ms. Same parameter count.
- fp32, not bf16 autocast: bf16 predict 1420 ms vs 225 ms fp32 (this CPU has no native bf16 matmul).
- 2x2 token pooling after SigLIP (64 -> 16 tokens/camera): LM prefill 113 instead of 401 tokens; the vision tower
  (6 x 64 patches) then dominates, so it is narrower (256) than the LM (384).
- Meta-action phrases are single tokens (occvla/tokenizer.py): 2 decoding steps instead of 5-6.
Result (benchmarks/model_latency.py --preset small): predict 106 ms (2 threads) / 151 ms (1 thread), with the
occupancy branch 145 / 224 ms, skip overhead ratio 0.94-1.02 (noise), train step (batch 4) 1.4 / 2.1 s.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

NUM_CAMERAS = 6
NUM_WAYPOINTS = 6
NUM_OCC_CLASSES = 18  # Occ3D: 0..16 semantic, 17 free


@dataclass
class VisionConfig:
    """SigLIP vision tower sizes. ``token_pool`` average-pools the patch grid (k x k) before the projector, which
    divides the number of image tokens the LM sees by k**2 (the main lever on CPU latency)."""

    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 6
    intermediate_size: int = 1536
    patch_size: int = 14
    image_size: int = 112
    token_pool: int = 1

    @property
    def tokens_per_camera(self) -> int:
        side = self.image_size // self.patch_size
        return (side // self.token_pool) ** 2


@dataclass
class TextConfig:
    """Language-model sizes. ``arch`` is "gemma2" (the paper's LM; eager attention only in transformers 5.x) or
    "gemma" (v1, runs SDPA: faster on CPU, used by the small presets; see README for the measurement)."""

    arch: str = "gemma"
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 6
    num_kv_heads: int = 1
    head_dim: int = 64
    intermediate_size: int = 1536
    vocab_size: int = 512
    max_position_embeddings: int = 2048


@dataclass
class OccConfig:
    """Occupancy branch. ``grid`` is the (pooled) label grid (X, Y, Z); the VQ-VAE decoder maps a (C, X/ds, Y/ds)
    latent to it, and the branch has one query per latent cell. ``source_layer`` indexes the LM hidden states
    (0 = embeddings, L = last layer; negative counts from the end) whose image-token rows the queries attend to."""

    enabled: bool = True
    grid: tuple[int, int, int] = (50, 50, 16)
    num_classes: int = NUM_OCC_CLASSES
    source_layer: int = -1
    hidden_size: int = 192
    num_layers: int = 2
    num_heads: int = 4
    self_attention: bool = True
    lovasz_weight: float = 0.0
    # keyword arguments for occvla.vqvae.VQVAEConfig (grid and num_classes come from above)
    vqvae: dict[str, Any] = field(
        default_factory=lambda: {"latent_dim": 64, "downsample": 2, "hidden": (64, 128), "codebook_size": 512}
    )


@dataclass
class PlannerConfig:
    """Planning-head MLP: [meta-action hidden, ego velocity, per-camera pooled visual tokens] -> 6 (x, y) points."""

    hidden_size: int = 256
    num_layers: int = 2
    visual_dim: int = 64  # per-camera pooled visual feature after projection
    output_scale: float = 10.0  # metres per unit of the raw MLP output
    velocity_scale: float = 10.0  # m/s per unit of the velocity input
    # Predict offsets from the constant-velocity rollout (ego velocity x time) instead of absolute waypoints. A
    # trajectory's scale is then the ego's own speed by construction; without it a head whose meta-action hidden
    # state no longer carries the speed (speed_in_prompt off) learns the scale from the meta-action and plans
    # 4 m in the first second from a standstill. A training choice (occvla-train ... model.overrides=...), off
    # for runs saved before it existed.
    kinematic_prior: bool = False
    # Side of the grid each camera's image-token states are averaged into for the head: 1 (one vector per camera,
    # the runs before it existed) keeps which camera sees what but not where in the image; 2 keeps left/right and
    # near/far halves, which lane keeping reads (README, OccVLA-small). Must divide the camera's token grid.
    visual_grid: int = 1
    # Read the route's plan points (planning.route_features): where the route goes, as closed-loop CARLA agents
    # do. Off for runs saved before it existed; needs data with ``route_points`` (collected data).
    route_input: bool = False


@dataclass
class LoraConfig:
    """LoRA settings for ``wrap_with_peft``: regexes select Linear layers in the LM and the vision tower."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    lm_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    vision_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


@dataclass
class OccVLAConfig:
    """Whole-model configuration (see module docstring for presets)."""

    preset: str = "small"
    num_cameras: int = NUM_CAMERAS
    num_waypoints: int = NUM_WAYPOINTS
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    occ: OccConfig = field(default_factory=OccConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    text_loss_weight: float = 1.0
    occ_loss_weight: float = 1.0
    plan_loss_weight: float = 1.0
    # bf16 autocast in OccVLAPolicy.predict: a win only on CPUs with native bf16 (AVX512-BF16/AMX) or GPUs; on the
    # AVX2 machines here it measured 5-10x slower than fp32 (README), so presets default to fp32.
    inference_bf16: bool = False
    # The ego speed in the prompt text too (else only the planning head reads it): off by default, see
    # occvla/processor.py on the inertia problem.
    speed_in_prompt: bool = False
    pretrained_path: str | None = None  # local PaliGemma checkpoint directory (paper preset); never a hub id
    image_token_id: int | None = None  # None: taken from the tokenizer (the <image> token)

    @property
    def image_tokens(self) -> int:
        """LM image tokens per sample (all cameras)."""
        return self.num_cameras * self.vision.tokens_per_camera

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (tuples become lists) for YAML."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OccVLAConfig:
        """Build from a dict. A ``preset`` key starts from that preset; other keys override it. Unknown keys raise
        ``ValueError`` naming the key."""
        data = dict(data)
        preset = data.pop("preset", None)
        base = preset_config(preset) if preset is not None else cls()
        return apply_overrides(base, data)

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent sizes (checked once at build time)."""
        v, t, o = self.vision, self.text, self.occ
        if v.image_size % v.patch_size:
            raise ValueError(
                f"vision.image_size {v.image_size} is not a multiple of patch_size {v.patch_size}"
            )
        if (v.image_size // v.patch_size) % v.token_pool:
            raise ValueError(
                f"vision.token_pool {v.token_pool} does not divide the {v.image_size // v.patch_size}-patch grid"
            )
        if t.arch not in ("gemma", "gemma2"):
            raise ValueError(f"text.arch must be 'gemma' or 'gemma2', got {t.arch!r}")
        if t.num_heads % t.num_kv_heads:
            raise ValueError(f"text.num_heads {t.num_heads} not divisible by num_kv_heads {t.num_kv_heads}")
        if len(o.grid) != 3:
            raise ValueError(f"occ.grid must be (X, Y, Z), got {o.grid}")
        if o.hidden_size % o.num_heads:
            raise ValueError(f"occ.hidden_size {o.hidden_size} not divisible by occ.num_heads {o.num_heads}")
        if self.num_cameras < 1:
            raise ValueError(f"num_cameras must be >= 1, got {self.num_cameras}")
        side = round(v.tokens_per_camera**0.5)
        g = self.planner.visual_grid
        if g < 1 or side % g:
            raise ValueError(f"planner.visual_grid {g} must divide the {side}x{side} image-token grid of a camera")


def _to_plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


def apply_overrides(cfg: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass ``cfg`` with nested ``overrides`` applied (dotted keys allowed: "text.num_layers").

    Raises:
        ValueError: a key names no field.
    """
    cfg = copy.deepcopy(cfg)
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in overrides.items():
        if "." in key:
            head, rest = key.split(".", 1)
            value, key = {rest: value}, head
        if key not in fields:
            raise ValueError(f"unknown config key {prefix + key!r}; expected one of {sorted(fields)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"config key {prefix + key!r} needs a mapping, got {value!r}")
            value = apply_overrides(current, value, prefix=f"{prefix}{key}.")
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif key == "vqvae" and isinstance(value, dict):
            value = {**current, **{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}}
        setattr(cfg, key, value)
    return cfg


def _tiny() -> OccVLAConfig:
    return OccVLAConfig(
        preset="tiny",
        vision=VisionConfig(
            hidden_size=192,
            num_layers=3,
            num_heads=4,
            intermediate_size=512,
            patch_size=16,
            image_size=64,
            token_pool=1,
        ),
        text=TextConfig(
            arch="gemma",
            hidden_size=256,
            num_layers=3,
            num_heads=4,
            num_kv_heads=1,
            head_dim=64,
            intermediate_size=1024,
            vocab_size=512,
        ),
        occ=OccConfig(
            grid=(16, 16, 8),
            hidden_size=128,
            num_layers=2,
            num_heads=4,
            vqvae={"latent_dim": 32, "downsample": 2, "hidden": (32, 64), "codebook_size": 128},
        ),
        planner=PlannerConfig(hidden_size=256, visual_dim=32),
        lora=LoraConfig(r=8, alpha=16),
    )


def _small() -> OccVLAConfig:
    return OccVLAConfig(
        preset="small",
        vision=VisionConfig(
            hidden_size=256,
            num_layers=6,
            num_heads=4,
            intermediate_size=1024,
            patch_size=14,
            image_size=112,
            token_pool=2,
        ),
        text=TextConfig(
            arch="gemma",
            hidden_size=384,
            num_layers=8,
            num_heads=6,
            num_kv_heads=1,
            head_dim=64,
            intermediate_size=1536,
            vocab_size=1024,
        ),
        occ=OccConfig(
            grid=(50, 50, 16),
            hidden_size=192,
            num_layers=2,
            num_heads=4,
            vqvae={"latent_dim": 64, "downsample": 2, "hidden": (64, 128), "codebook_size": 512},
        ),
        planner=PlannerConfig(hidden_size=256, visual_dim=64),
        lora=LoraConfig(r=16, alpha=32),
    )


def _paper() -> OccVLAConfig:
    # PaliGemma2-3B-224: SigLIP So400m/14 at 224 px (256 tokens/camera) + Gemma2-2B, vocab 257,216.
    return OccVLAConfig(
        preset="paper",
        vision=VisionConfig(
            hidden_size=1152,
            num_layers=27,
            num_heads=16,
            intermediate_size=4304,
            patch_size=14,
            image_size=224,
            token_pool=1,
        ),
        text=TextConfig(
            arch="gemma2",
            hidden_size=2304,
            num_layers=26,
            num_heads=8,
            num_kv_heads=4,
            head_dim=256,
            intermediate_size=9216,
            vocab_size=257216,
            max_position_embeddings=8192,
        ),
        occ=OccConfig(
            grid=(200, 200, 16),
            hidden_size=512,
            num_layers=2,
            num_heads=8,
            source_layer=-1,
            vqvae={"latent_dim": 128, "downsample": 4, "hidden": (64, 128), "codebook_size": 512},
        ),
        planner=PlannerConfig(hidden_size=1024, visual_dim=256),
        lora=LoraConfig(r=16, alpha=32),
        image_token_id=257152,
    )


PRESETS = {"tiny": _tiny, "small": _small, "paper": _paper}


def preset_config(name: str) -> OccVLAConfig:
    """The config of a named preset ("tiny", "small", "paper")."""
    if name not in PRESETS:
        raise ValueError(f"unknown OccVLA preset {name!r}; expected one of {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    return cfg
