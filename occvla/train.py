"""``occvla-train`` / ``python -m occvla.train``: hydra-driven OccVLA training, one stage per run.

Examples (from the repository root; paths are relative to the working directory):
    occvla-train model=tiny train=stage0_vqvae run_dir=runs/vq
    occvla-train model=tiny train=stage1_vqa model.vqvae_path=runs/vq run_dir=runs/s1
    occvla-train model=tiny train=stage2_joint model.init_from=runs/s1 run_dir=runs/s2
    occvla-train model=tiny train=stage3_planning model.init_from=runs/s2 run_dir=runs/s3
    occvla-train ... run_dir=runs/s3 resume=true      # continue from runs/s3/checkpoints/last.pt
    torchrun --nproc_per_node=2 -m occvla.train ...   # data parallel, same global train.batch_size (distributed.py)
Config groups: configs/model/{tiny,small,paper}.yaml, configs/train/stage*.yaml, configs/data/*.yaml, over the
structured schema in occvla/training/config.py (struct mode: an unknown key is a one-line error).
A finished run directory is self-contained: config.yaml, model.safetensors, tokenizer/, README.md (model card with
data and metrics), plus metrics.csv, tb/ (TensorBoard) and checkpoints/ (stage 0: vqvae.safetensors instead).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from occvla.training.config import STAGES, register_configs

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRIMARY = "occvla_train"

register_configs()


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The composed config for a list of CLI-style overrides (for tests and notebooks; no hydra run dir)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=PRIMARY, overrides=list(overrides or []))


def run(cfg: DictConfig) -> dict | None:
    """Run the stage ``cfg.train.stage`` into ``cfg.run_dir``; returns the final eval metrics."""
    import torch

    from occvla.training import distributed
    from occvla.training.common import seed_everything
    from occvla.training.config import TrainConfig

    try:  # "+key=value" overrides bypass hydra's struct check: validate against the schema once more
        OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.to_container(cfg, resolve=False))
    except Exception as e:  # noqa: BLE001 - omegaconf raises several types
        raise ValueError(f"invalid config: {str(e).splitlines()[0]}") from None
    stage = int(cfg.train.stage)
    if stage not in STAGES:
        raise ValueError(f"train.stage must be one of {sorted(STAGES)}, got {stage}")
    for name in ("steps", "batch_size", "log_every", "ckpt_every", "eval_batch_size"):
        if int(cfg.train[name]) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {cfg.train[name]}")
    run_dir = Path(cfg.run_dir)
    if (run_dir / "checkpoints").exists() and not cfg.resume:
        raise ValueError(f"run_dir {run_dir} already holds a run; pass resume=true to continue it or a new run_dir")
    if cfg.device == "auto":
        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg.device = distributed.init_from_launcher(cfg.device)  # torchrun: join the process group
    distributed.barrier()  # every rank has checked run_dir before rank 0 writes into it
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    seed_everything(int(cfg.seed))
    torch.use_deterministic_algorithms(False)
    if stage == 0:
        from occvla.training.stage0 import train_stage0

        return train_stage0(cfg, run_dir)
    from occvla.training.vla import train_vla

    return train_vla(cfg, run_dir)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=PRIMARY)
def _hydra_main(cfg: DictConfig) -> None:
    from occvla.training import distributed

    try:
        metrics = run(cfg)
    except (ValueError, FileNotFoundError) as e:  # bad input: one line, no traceback
        print(f"occvla-train: error: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        distributed.shutdown()
    if metrics:
        print(" ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))


def main() -> None:
    """Console-script entry point (``occvla-train``)."""
    _hydra_main()


if __name__ == "__main__":
    main()
