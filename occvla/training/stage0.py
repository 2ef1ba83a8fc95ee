"""Stage 0: train the occupancy VQ-VAE on Occ3D labels pooled to the model's grid.

Output: ``<run_dir>/vqvae.safetensors`` (``OccVQVAE.save``), config.yaml, README.md, metrics.csv, tb/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from omegaconf import OmegaConf
from tqdm import tqdm

from occvla.config import apply_overrides, preset_config
from occvla.metrics import OccupancyIoU
from occvla.training import distributed
from occvla.training.common import (
    MetricLogger,
    batch_indices,
    has_checkpoint,
    load_checkpoint,
    lr_lambda,
    make_optimizer,
    save_checkpoint,
)
from occvla.training.data import build_datasets
from occvla.vqvae import OccVQVAE, VQVAEConfig

VQVAE_FILE = "vqvae.safetensors"


def vqvae_config_for(cfg: Any) -> VQVAEConfig:
    """The VQ-VAE config the OccVLA model of ``cfg.model`` expects (grid, classes, its ``occ.vqvae`` dict)."""
    mcfg = apply_overrides(preset_config(cfg.model.preset), OmegaConf.to_container(cfg.model.overrides))
    return VQVAEConfig(grid=tuple(mcfg.occ.grid), num_classes=mcfg.occ.num_classes, **mcfg.occ.vqvae)


def _occ_batch(ds: Any, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    samples = [ds[i] for i in idx]
    sem = torch.from_numpy(np.stack([s["occupancy"] for s in samples])).long()  # (B, X, Y, Z)
    mask = torch.from_numpy(np.stack([s["mask_camera"] for s in samples]))  # (B, X, Y, Z)
    return sem, mask


@torch.no_grad()
def evaluate_vqvae(model: OccVQVAE, ds: Any, max_samples: int, batch_size: int) -> dict[str, float]:
    """Reconstruction mIoU / geometric IoU on mask_camera (Occ3D convention) and codebook usage."""
    model.eval()
    iou = OccupancyIoU(num_classes=model.cfg.num_classes)
    used = torch.zeros(model.cfg.codebook_size, dtype=torch.bool)
    n = min(len(ds), max_samples)
    for start in range(0, n, batch_size):
        sem, mask = _occ_batch(ds, list(range(start, min(n, start + batch_size))))
        out = model(sem)
        iou.update(out["logits"].argmax(1), sem, mask)
        used[out["indices"].flatten().unique()] = True
    r = iou.compute()
    model.train()
    return {"occ_miou": r["miou"], "occ_iou_geo": r["iou_geo"], "codebook_used": float(used.float().mean())}


def train_stage0(cfg: Any, run_dir: Path) -> dict[str, float]:
    """Train the VQ-VAE; returns the final eval metrics."""
    t = cfg.train
    vq_cfg = vqvae_config_for(cfg)
    train_ds, eval_ds, eval_split = build_datasets(cfg.data, image_size=8, occ_grid=vq_cfg.grid, load_images=False,
                                                   require_occupancy=True)
    model = OccVQVAE(vq_cfg).to(cfg.device)
    opt = make_optimizer(model, t.lr, t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(t.warmup_steps, t.steps, t.min_lr_ratio))
    step = load_checkpoint(run_dir, model, opt, sched) if cfg.resume and has_checkpoint(run_dir) else 0
    distributed.broadcast_state(model)
    main = distributed.is_main()
    log = MetricLogger(run_dir) if main else None
    batches = batch_indices(len(train_ds), t.batch_size, cfg.seed, step)
    bar = tqdm(total=t.steps, initial=step, desc="stage0 vqvae", disable=not (t.progress and main),
               dynamic_ncols=True)
    model.train()
    while step < t.steps:
        sem, _ = _occ_batch(train_ds, distributed.local_slice(next(batches)))
        with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=t.bf16):
            out = model(sem.to(cfg.device))
        opt.zero_grad(set_to_none=True)
        out["loss"].float().backward()
        distributed.average_gradients(p for p in model.parameters() if p.requires_grad)
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        distributed.average_float_buffers(model)  # the EMA codebook saw this rank's samples only
        sched.step()
        step += 1
        vals = {k: distributed.mean_scalar(float(out[k].detach()))
                for k in ("loss", "rec_loss", "vq_loss", "perplexity")}
        vals["lr"] = sched.get_last_lr()[0]
        bar.update(1)
        bar.set_postfix(loss=f"{vals['loss']:.3f}", ppl=f"{vals['perplexity']:.1f}")
        if log is not None and (step % t.log_every == 0 or step == t.steps):
            log.log(step, "train", vals)
        if main and (step % t.ckpt_every == 0 or step == t.steps):
            save_checkpoint(run_dir, model, opt, sched, step)
    bar.close()
    distributed.barrier()
    if not main:
        return {}
    metrics = evaluate_vqvae(model, eval_ds, t.eval_max_samples, t.eval_batch_size)
    log.log(step, eval_split, metrics)
    log.close()
    model.save(run_dir / VQVAE_FILE)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["metrics"] = metrics
    (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    n_par = sum(p.numel() for p in model.parameters())
    lines = [
        "# OccVLA stage 0: occupancy VQ-VAE",
        "",
        (f"OccWorld-style VQ-VAE over a {'x'.join(map(str, vq_cfg.grid))} Occ3D grid ({vq_cfg.num_classes} classes): "
        f"latent {'x'.join(map(str, model.latent_shape))}, codebook {vq_cfg.codebook_size}, {n_par:,} parameters."),
        (f"Trained {step} steps (batch {t.batch_size}) on {len(train_ds)} samples of `{cfg.data.root}` "
        f"({cfg.data.kind}); evaluated on {min(len(eval_ds), t.eval_max_samples)} {eval_split} samples."),
        "",
        "| metric | value |", "|---|---|", *[f"| {k} | {v:.4g} |" for k, v in metrics.items()], "",
        f"Use: `occvla-train train=stage1_vqa model.vqvae_path={run_dir / VQVAE_FILE}`", "",
    ]
    (run_dir / "README.md").write_text("\n".join(lines))
    return metrics
