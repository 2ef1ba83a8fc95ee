"""Structured (dataclass) configs for ``occvla-train``, registered in hydra's ConfigStore.

The YAML files in configs/{model,train,data}/ fill these schemas; the schema is in struct mode, so an unknown key
anywhere (a typo on the command line or in a YAML file) fails composition with a one-line error naming the key.
``model.overrides`` is the one free-form mapping: it is applied to ``OccVLAConfig`` by ``apply_overrides``, which
rejects unknown keys itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

STAGES = {0: "VQ-VAE on occupancy labels", 1: "VLM on driving QA", 2: "joint text + occupancy",
          3: "planning head (others frozen)"}


@dataclass
class ModelSection:
    """Which OccVLA to build and where its starting weights come from."""

    preset: str = "small"  # tiny | small | paper
    overrides: dict[str, Any] = field(default_factory=dict)  # nested OccVLAConfig overrides
    pretrained_path: str | None = None  # local PaliGemma checkpoint directory (paper preset)
    lora: bool = False  # LoRA via wrap_with_peft (for pretrained backbones); False trains the VLM fully
    init_from: str | None = None  # run directory of the previous stage
    vqvae_path: str | None = None  # stage-0 vqvae.safetensors (or a stage-0 run directory)


@dataclass
class SyntheticSection:
    """``data.kind=synthetic``: written by ``make_synthetic_dataset`` when ``data.root`` holds no dataset yet."""

    n_scenes: int = 14
    n_samples: int = 20
    seed: int = 0


@dataclass
class DataSection:
    """A nuScenes-layout dataset with Occ3D labels (real or project-written)."""

    kind: str = "synthetic"  # synthetic | nuscenes
    root: str = "data/occvla_synthetic"
    version: str | None = None  # v1.0-* folder; None: the only one present
    occ_root: str | None = None  # Occ3D gts/ parent if not data.root
    val_fraction: float = 0.2
    train_scenes: list[str] | None = None  # explicit scene names (e.g. nuScenes' official split)
    val_scenes: list[str] | None = None
    # trajectory labels: driven | expert_plan | expert_plan_when_perturbed (occvla.data.nuscenes.TRAJECTORY_SOURCES)
    trajectory_source: str = "expert_plan_when_perturbed"
    drop_stuck: bool = True  # leave out collected key frames where the expert was stuck (NuScenesOccDataset)
    # route points from leaderboard 1.0's plan ("50"), 2.x's ("200") or each sample one of them ("mixed")
    route_plan: str = "mixed"
    synthetic: SyntheticSection = field(default_factory=SyntheticSection)


@dataclass
class TrainSection:
    """One training stage (see ``STAGES``)."""

    name: str = "stage2_joint"
    stage: int = 2
    steps: int = 1000
    stop_at: int | None = None  # end this invocation at this step (checkpointed); resume=true continues
    batch_size: int = 4
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decay floor, as a fraction of lr
    grad_clip: float = 1.0
    bf16: bool = False  # bf16 autocast (CPU or CUDA)
    include_qa: bool = True  # QA pairs in the text target (stages 1-2)
    cache_frozen: bool = True  # stage 3: frozen-VLM planner inputs computed once per sample, the head trains on them
    planner_meta: str = "teacher"  # stage 3: whose meta-action the head reads: teacher | generated | both (vla.py)
    text_weight: float | None = None  # None: the model config's weight
    occ_weight: float | None = None
    plan_weight: float | None = None
    log_every: int = 10
    ckpt_every: int = 200
    eval_max_samples: int = 64  # 0 skips the end-of-run eval pass
    eval_batch_size: int = 4
    progress: bool = True


@dataclass
class TrainConfig:
    """Root config of ``occvla-train``."""

    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    data: DataSection = field(default_factory=DataSection)
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int | None = None  # torch.set_num_threads; 1 is often fastest for tiny models on shared cores
    run_dir: str = "runs/${train.name}_${model.preset}_${now:%Y%m%d-%H%M%S}"
    resume: bool = False


def register_configs() -> None:
    """Register the schema and the primary config (defaults: small model, stage 2, synthetic data)."""
    cs = ConfigStore.instance()
    cs.store(name="occvla_train_schema", node=TrainConfig)
    cs.store(
        name="occvla_train",
        node={
            "defaults": ["occvla_train_schema", {"model": "small"}, {"train": "stage2_joint"},
                         {"data": "synthetic"}, "_self_"],
            "hydra": {"run": {"dir": "${run_dir}"}, "output_subdir": None, "job": {"chdir": False}},
        },
    )
