"""Stages 1-3: the OccVLA model.

- stage 1: VLM on driving QA: text loss (meta-action + QA answers); vision, projector, LM (or their LoRA) train.
- stage 2: joint: text loss (autoregressive) + occupancy loss (non-autoregressive, through the frozen VQ-VAE
  decoder); the occupancy branch trains too.
- stage 3: planning head only (L1 waypoint loss); everything else frozen. With ``train.cache_frozen`` (default) the
  frozen VLM runs once per training sample (``OccVLAModel.planner_inputs``) and the head trains on that cache: the
  same loss and gradients, without a VLM forward per step (benchmarks/train_step.py).
Starting weights: ``model.init_from`` (a previous stage's run directory; LoRA merged on load, fresh adapters if
``model.lora``), else a fresh build of ``model.preset`` (+ ``model.pretrained_path``), with ``model.vqvae_path``
plugged in. The tokenizer comes from the previous run, the checkpoint (paper), or is built offline from the data.

Evaluation (end of run, ``eval_max_samples`` samples): greedy meta-action + planner waypoints via
``OccVLAModel.generate`` -> L2 (UniAD/ST-P3), collision rate against future agent boxes (``col_*``) and the
current occupancy (``col_occ_*``), meta-action accuracy; occupancy mIoU on mask_camera from the occupancy branch;
teacher-forced losses; VQA accuracy as teacher-forced exact match of every answer token (equal to greedy-decoding
exact match of the answer given the same prefix).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from occvla.model import OccVLAOutput
from occvla.metrics import OpenLoopMetrics, occupancy_to_bev
from occvla.planning import planning_loss
from occvla.training.common import (
    CKPT_DIR,
    MetricLogger,
    batch_indices,
    has_checkpoint,
    load_checkpoint,
    lr_lambda,
    make_optimizer,
    save_checkpoint,
)
from occvla.training import distributed
from occvla.training.data import build_datasets
from occvla.training.stage0 import VQVAE_FILE

TOKENIZER_CKPT = "tokenizer"
QA_TEXT_SAMPLES = 64


def _light(ds: Any, occupancy: bool) -> Any:
    d = copy.copy(ds)
    d.load_images, d.load_occupancy = False, occupancy
    return d


def _build_processor(cfg: Any, model: Any, train_ds: Any, run_dir: Path) -> Any:
    from occvla.processor import OccVLAProcessor

    ck = run_dir / CKPT_DIR / TOKENIZER_CKPT
    if cfg.resume and (ck / "processor_config.json").is_file():
        return OccVLAProcessor.from_pretrained(ck)
    from occvla.training.distributed import is_main

    if model.config.pretrained_path:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.config.pretrained_path, local_files_only=True)
    else:
        from occvla.tokenizer import build_tokenizer

        light = _light(train_ds, occupancy=True)
        texts, questions = [], set()
        for i in range(min(len(light), QA_TEXT_SAMPLES)):
            for q, a in light[i].get("qa", []):
                texts.append(f"{q} {a}")
                questions.add(q)
        tok = build_tokenizer(texts, vocab_size=model.config.text.vocab_size, questions=sorted(questions))
    if len(tok) > model.config.text.vocab_size:
        raise ValueError(f"tokenizer has {len(tok)} tokens > model text.vocab_size {model.config.text.vocab_size}")
    proc = OccVLAProcessor.for_config(model.config, tok)
    if is_main():
        proc.save_pretrained(ck)
    return proc


def build_model_and_processor(cfg: Any, train_ds: Any, run_dir: Path) -> tuple[Any, Any]:
    """Model (weights per ``model.init_from`` / preset / vqvae_path; LoRA per ``model.lora``) and its processor."""
    from occvla.model import build_model
    from occvla.peft_utils import wrap_with_peft
    from occvla.run_dir import load_run_dir

    m = cfg.model
    if m.init_from:
        model, processor, _ = load_run_dir(m.init_from)
        if model.config.preset != m.preset:
            raise ValueError(f"model.preset={m.preset} but model.init_from {m.init_from} holds a "
                             f"{model.config.preset!r} model; set model={model.config.preset}")
        apply_behaviour_overrides(model, OmegaConf.to_container(m.overrides, resolve=True), cfg.train.stage)
        if distributed.is_main():
            processor.save_pretrained(run_dir / CKPT_DIR / TOKENIZER_CKPT)
    else:
        overrides = OmegaConf.to_container(m.overrides, resolve=True)
        if m.pretrained_path:
            overrides["pretrained_path"] = str(m.pretrained_path)
        elif m.preset == "paper":
            raise ValueError("model=paper needs model.pretrained_path: a local PaliGemma2-3B-224 checkpoint directory")
        model = build_model(m.preset, **overrides)
        processor = _build_processor(cfg, model, train_ds, run_dir)
    if m.vqvae_path:
        p = Path(m.vqvae_path)
        model.load_vqvae(str(p / VQVAE_FILE if p.is_dir() else p))
    t = cfg.train
    if t.stage in (1, 2) and model.occ_branch is not None and not model.has_trained_vqvae:
        # stage 2 trains the branch through the frozen decoder; stage 1's weights are what stage 2 inherits
        raise ValueError(f"stage {t.stage} needs a trained VQ-VAE: pass model.vqvae_path=<stage-0 run dir> (or "
                         "model.init_from=<a run that had one>); a random frozen decoder would make the "
                         "occupancy loss meaningless")
    for key, attr in (("text_weight", "text_loss_weight"), ("occ_weight", "occ_loss_weight"),
                      ("plan_weight", "plan_loss_weight")):
        if t[key] is not None:
            setattr(model.config, attr, float(t[key]))
    processor.include_qa = bool(t.include_qa)
    if m.lora:
        wrap_with_peft(model)
    set_trainable(model, t.stage, lora=bool(m.lora))
    return model.to(cfg.device), processor


# model.overrides that may change a model loaded with model.init_from: they change what a part computes, never a
# weight's shape (everything else describes the architecture the loaded weights already have)
BEHAVIOUR_OVERRIDES = {"planner.kinematic_prior"}
# ... and the planning head's shape, in stage 3 only: the head trains from scratch there (stages 1-2 never train it),
# so a head of another shape is built fresh when one of these changes
HEAD_OVERRIDES = {"planner.visual_grid", "planner.visual_dim", "planner.hidden_size", "planner.num_layers",
                  "planner.route_input"}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def apply_behaviour_overrides(model: Any, overrides: dict[str, Any], stage: int) -> None:
    """Apply ``model.overrides`` to a model loaded with ``model.init_from`` (``BEHAVIOUR_OVERRIDES``; in stage 3
    also ``HEAD_OVERRIDES``, which rebuild the planning head untrained when they change its shape)."""
    from occvla.planning import PlanningHead

    flat = _flatten(overrides or {})
    allowed = BEHAVIOUR_OVERRIDES | (HEAD_OVERRIDES if stage == 3 else set())
    bad = sorted(set(flat) - allowed)
    if bad:
        raise ValueError(f"model.overrides {bad} cannot change a model loaded with model.init_from (its weights fix "
                         f"the architecture); allowed in stage {stage}: {sorted(allowed)}")
    reshaped = False
    for key, value in flat.items():
        section, name = key.split(".")
        reshaped |= key in HEAD_OVERRIDES and getattr(getattr(model.config, section), name) != value
        setattr(getattr(model.config, section), name, value)  # the modules hold the same config objects
    if reshaped:
        model.config.validate()
        c = model.config
        model.planner = PlanningHead(c.planner, c.text.hidden_size, c.num_cameras, c.num_waypoints).to(
            next(model.parameters()).device)


def set_trainable(model: Any, stage: int, lora: bool) -> None:
    """Which parameters train in each stage (module docstring). The VQ-VAE never trains."""
    if not lora:
        model.requires_grad_(False)
        model.vlm.requires_grad_(stage in (1, 2))
    else:  # wrap_with_peft enabled LoRA + projector + heads; narrow per stage
        for name, p in model.vlm.named_parameters():
            p.requires_grad_(stage in (1, 2) and ("lora_" in name or "multi_modal_projector" in name))
    if model.occ_branch is not None:
        model.occ_branch.requires_grad_(stage == 2)
    model.planner.requires_grad_(stage == 3)
    if model.vqvae is not None:
        model.vqvae.requires_grad_(False)


PLANNER_META = ("teacher", "generated", "both")


def cache_planner_inputs(model: Any, processor: Any, ds: Any, cfg: Any) -> dict[str, torch.Tensor]:
    """Stage 3: the planning head's inputs and targets for every training sample, from one frozen-VLM pass.

    ``train.planner_meta`` picks the meta-action whose hidden state the head reads: ``teacher`` (the label's, as the
    paper), ``generated`` (the model's own constrained greedy decoding, what the head reads when it drives: a wrong
    meta-action then still gets the expert's trajectory, so the head learns to plan from speed and the images too),
    or ``both`` (one row of each per sample).
    """
    t = cfg.train
    if t.planner_meta not in PLANNER_META:
        raise ValueError(f"train.planner_meta must be one of {PLANNER_META}, got {t.planner_meta!r}")
    dev = torch.device(cfg.device).type
    parts: dict[str, list[torch.Tensor]] = {"meta": [], "velocity": [], "visual": [], "trajectory": [], "route": []}

    def add(meta: torch.Tensor, vel: torch.Tensor, visual: torch.Tensor, route: torch.Tensor | None,
            traj: torch.Tensor) -> None:
        # (B, D) / (B, 2) / (B, V*g*g, D) / (B, 3, 2) / (B, 6, 2)
        if not model.config.planner.route_input:
            route = None
        elif route is None:  # every row has one when the head reads it
            raise ValueError("planner.route_input needs route points in every training sample; this data has none "
                             "(collect it with this version's occvla-collect, or train without the route)")
        for k, v in zip(parts, (meta, vel, visual, traj, route), strict=True):
            if v is not None:
                parts[k].append(v.float() if k in ("trajectory", "route") else v)

    model.eval()
    with torch.no_grad():
        for start in tqdm(range(0, len(ds), t.eval_batch_size), desc=f"{t.name}: frozen-VLM cache",
                          disable=not (t.progress and distributed.is_main()), dynamic_ncols=True):
            samples = _stage_samples([ds[i] for i in range(start, min(len(ds), start + t.eval_batch_size))], 3)
            if any("trajectory" not in s for s in samples):
                raise ValueError("stage 3 needs a 'trajectory' in every training sample")
            traj = torch.as_tensor(np.stack([s["trajectory"] for s in samples]), device=cfg.device)  # (B, 6, 2)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=t.bf16):
                if t.planner_meta in ("teacher", "both"):
                    add(*model.planner_inputs(_to(processor(samples, train=True), cfg.device)), traj)
                if t.planner_meta in ("generated", "both"):
                    batch = _to(processor(samples, train=False), cfg.device)
                    gen = model.generate(batch, processor.meta_action_ids, pad_id=processor.pad_id)
                    add(gen.meta_hidden, batch["ego_velocity"], gen.visual, batch.get("route"), traj)
    model.train()
    return {k: torch.cat(v) for k, v in parts.items() if v}


def _stage_samples(samples: list[dict], stage: int) -> list[dict]:
    drop = {1: ("occupancy", "mask_camera", "trajectory"), 2: ("trajectory",), 3: ("occupancy", "mask_camera")}
    return [{k: v for k, v in s.items() if k not in drop[stage]} for s in samples]


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _vqa_teacher_forced(logits: torch.Tensor, start: int, labels: torch.Tensor, meta_end: torch.Tensor,
                        eos_id: int) -> tuple[int, int]:
    """(correct, total) answers: an answer is a contiguous run of labelled tokens after the meta-action."""
    pred = logits.argmax(-1)  # (B, T-start): prediction for position start+1+j
    correct = total = 0
    for b in range(labels.shape[0]):
        pos = [p for p in range(int(meta_end[b]) + 1, labels.shape[1]) if int(labels[b, p]) != -100]
        runs: list[list[int]] = []
        for p in pos:
            if runs and p == runs[-1][-1] + 1:
                runs[-1].append(p)
            else:
                runs.append([p])
        for run in runs:
            run = [p for p in run if int(labels[b, p]) != eos_id]
            if not run:
                continue
            total += 1
            correct += all(int(pred[b, p - 1 - start]) == int(labels[b, p]) for p in run)
    return correct, total


def _pad_boxes(samples: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    m = max(s["agent_boxes"].shape[1] for s in samples)
    boxes = np.zeros((len(samples), 6, m, 5), np.float32)
    valid = np.zeros((len(samples), 6, m), bool)
    for i, s in enumerate(samples):
        k = s["agent_boxes"].shape[1]
        boxes[i, :, :k], valid[i, :, :k] = s["agent_boxes"], s["agent_valid"]
    return boxes, valid


@torch.no_grad()
def evaluate_vla(model: Any, processor: Any, ds: Any, cfg: Any) -> dict[str, float]:
    """Open-loop metrics + teacher-forced losses on up to ``train.eval_max_samples`` samples."""
    t = cfg.train
    model.eval()
    acc = OpenLoopMetrics()
    losses: dict[str, list[float]] = {"text_loss": [], "occ_loss": [], "plan_loss": []}
    vqa_ok = vqa_n = 0
    n = min(len(ds), t.eval_max_samples)
    dev = torch.device(cfg.device).type
    for start in range(0, n, t.eval_batch_size):
        samples = [ds[i] for i in range(start, min(n, start + t.eval_batch_size))]
        has_occ = all("occupancy" in s for s in samples) and model.occ_branch is not None
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=t.bf16):
            gen = model.generate(_to(processor(samples, train=False), cfg.device), processor.meta_action_ids,
                                 return_occupancy=has_occ, pad_id=processor.pad_id)
            res = model(_to(processor(samples, train=True), cfg.device), compute_occupancy=has_occ)
        preds = [processor.decode(ids) for ids in gen.token_ids]
        acc.add_meta_actions(preds, [s["meta_action"] for s in samples])
        gt = np.stack([s["trajectory"] for s in samples])
        bev = occupancy_to_bev(np.stack([s["occupancy"] for s in samples])) if has_occ else None
        boxes, valid = _pad_boxes(samples) if all("agent_boxes" in s for s in samples) else (None, None)
        acc.add_trajectories(gen.waypoints.float().cpu().numpy(), gt, obstacle_bev=bev, agent_boxes=boxes,
                             agent_valid=valid)
        if has_occ and gen.occ_logits is not None:
            acc.add_occupancy(gen.occ_logits.float().argmax(1).cpu(), np.stack([s["occupancy"] for s in samples]),
                              np.stack([s["mask_camera"] for s in samples]))
        for k, vals in losses.items():
            v = getattr(res, k)
            if v is not None:
                vals.append(float(v))
        if processor.include_qa and res.logits is not None:
            batch = processor(samples, train=True)
            c, tot = _vqa_teacher_forced(res.logits.float().cpu(), res.logits_start, batch["labels"],
                                         batch["meta_end_index"], processor.eos_id)
            vqa_ok, vqa_n = vqa_ok + c, vqa_n + tot
    out = acc.compute()
    out.update({k: float(np.mean(v)) for k, v in losses.items() if v})
    if vqa_n:
        out["vqa_accuracy"] = vqa_ok / vqa_n
    model.train()
    return out


def _data_card(cfg: Any, train_ds: Any, eval_ds: Any, eval_split: str, steps: int) -> str:
    light = _light(train_ds, occupancy=False)
    light.generate_qa = False
    counts = Counter(light[i]["meta_action"] for i in range(len(light)))
    top = ", ".join(f"{k} ({v})" for k, v in counts.most_common(8))
    return "\n".join([
        "## Training",
        "",
        (f"Stage {cfg.train.stage} (`{cfg.train.name}`): {steps} steps, batch {cfg.train.batch_size}, "
        f"lr {cfg.train.lr}, seed {cfg.seed}, bf16 autocast {cfg.train.bf16}, LoRA {cfg.model.lora}, init from "
        f"`{cfg.model.init_from or 'scratch'}`, VQ-VAE `{cfg.model.vqvae_path or ('inherited' if cfg.model.init_from else 'untrained')}`."),
        (f"Data: {len(train_ds)} training samples from `{cfg.data.root}` ({cfg.data.kind}); metrics on "
        f"{min(len(eval_ds), cfg.train.eval_max_samples)} {eval_split} samples. Meta-actions in training: {top}."),
    ])


def train_vla(cfg: Any, run_dir: Path) -> dict[str, float] | None:
    """Run stage 1, 2 or 3; returns the eval metrics (None when stopped early by ``train.stop_at``)."""
    from occvla.run_dir import save_run_dir

    t = cfg.train
    from occvla.config import apply_overrides, preset_config

    if cfg.model.init_from:
        import yaml

        from occvla.run_dir import CONFIG_FILE

        mc = yaml.safe_load((Path(cfg.model.init_from) / CONFIG_FILE).read_text())["model"]
        image_size, grid = mc["vision"]["image_size"], tuple(mc["occ"]["grid"])
    else:
        mcfg = apply_overrides(preset_config(cfg.model.preset), OmegaConf.to_container(cfg.model.overrides))
        image_size, grid = mcfg.vision.image_size, tuple(mcfg.occ.grid)
    train_ds, eval_ds, eval_split = build_datasets(cfg.data, image_size=image_size, occ_grid=grid,
                                                   require_occupancy=t.stage == 2)
    model, processor = build_model_and_processor(cfg, train_ds, run_dir)
    opt = make_optimizer(model, t.lr, t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(t.warmup_steps, t.steps, t.min_lr_ratio))
    step = load_checkpoint(run_dir, model, opt, sched) if cfg.resume and has_checkpoint(run_dir) else 0
    distributed.broadcast_state(model)
    main = distributed.is_main()
    end = min(t.steps, t.stop_at) if t.stop_at is not None else t.steps
    log = MetricLogger(run_dir) if main else None
    cache = cache_planner_inputs(model, processor, train_ds, cfg) if t.stage == 3 and t.cache_frozen else None
    if t.stage == 3 and not t.cache_frozen and t.planner_meta != "teacher":
        raise ValueError(f"train.planner_meta={t.planner_meta} needs train.cache_frozen=true")
    batches = batch_indices(len(train_ds) if cache is None else len(cache["meta"]), t.batch_size, cfg.seed, step)
    bar = tqdm(total=t.steps, initial=step, desc=t.name, disable=not (t.progress and main), dynamic_ncols=True)
    dev = torch.device(cfg.device).type
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    while step < end:
        idx = distributed.local_slice(next(batches))  # this process's share of the global batch
        if cache is not None:  # stage 3 on the frozen VLM's cached outputs: the head alone runs
            sel = torch.as_tensor(idx)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=t.bf16):
                route = cache["route"][sel] if "route" in cache else None
                wps = model.planner(cache["meta"][sel], cache["velocity"][sel], cache["visual"][sel], route).float()
            loss = planning_loss(wps, cache["trajectory"][sel])
            res = OccVLAOutput(loss=loss, plan_loss=loss)
        else:
            samples = _stage_samples([train_ds[i] for i in idx], t.stage)
            batch = _to(processor(samples, train=True), cfg.device)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=t.bf16):
                res = model(batch, compute_occupancy=t.stage == 2)
            loss = {1: res.text_loss, 2: res.loss, 3: res.plan_loss}[t.stage]
        if loss is None:
            raise ValueError(f"stage {t.stage} produced no loss: the batch lacks its targets")
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        distributed.average_gradients(params)
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        opt.step()
        sched.step()
        step += 1
        vals = {"loss": distributed.mean_scalar(float(loss.detach())), "lr": sched.get_last_lr()[0]}
        for k in ("text_loss", "occ_loss", "plan_loss"):
            v = getattr(res, k)
            if v is not None:
                vals[k] = distributed.mean_scalar(float(v.detach()))
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in vals.items() if k != "lr"})
        if log is not None and (step % t.log_every == 0 or step == end):
            log.log(step, "train", vals)
        if main and (step % t.ckpt_every == 0 or step == end):
            save_checkpoint(run_dir, model, opt, sched, step)
    bar.close()
    distributed.barrier()  # the last checkpoint is written before any rank returns
    if not main:
        return None
    if step < t.steps:  # stopped by stop_at: resume=true continues
        log.close()
        return None
    metrics = evaluate_vla(model, processor, eval_ds, cfg)
    log.log(step, eval_split, metrics)
    log.close()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    save_run_dir(run_dir, model, processor, resolved, metrics, card_extra=_data_card(cfg, train_ds, eval_ds,
                                                                                      eval_split, step))
    (run_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
