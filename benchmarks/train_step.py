"""Where a training step's time goes, per stage: data loading, collation, each model part forward, backward, optimiser.

    python benchmarks/train_step.py [--preset small] [--stages 1 2 3] [--steps 4] [--batch 4] [--threads 2]

Data: a synthetic nuScenes-layout dataset with 400x225 camera frames (the agent's render size) and full 200x200x16
Occ3D labels, written once under --data (default: a cache folder outside the repository), read through the same
dataset class and processor as ``occvla-train``. Weights are random (time does not depend on them).

Forward time per part comes from forward hooks on the vision tower, the language model, the occupancy branch, the
VQ-VAE decoder and the planning head ("rest": embedding, LM head, losses). Stage 3 is timed twice: the plain step
(frozen VLM forward every step) and the cached step ``occvla-train`` uses (the frozen VLM's planner inputs computed
once per sample, ``train.cache_frozen=true``), whose one-off cost per sample is reported as ``s3_cache_per_sample_ms``.

Prints a table per stage and ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from occvla.data import NuScenesOccDataset, make_synthetic_dataset
from occvla.model import build_model
from occvla.processor import OccVLAProcessor
from occvla.tokenizer import build_tokenizer
from occvla.training.common import make_optimizer
from occvla.training.vla import _stage_samples, set_trainable

PARTS = ("vision_tower", "language_model", "occ_branch", "vqvae.decoder", "planner")


class PartTimer:
    """Forward wall time per named submodule (hooks), reset per step."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self._t0: dict[str, float] = {}
        for name in PARTS:
            mod = model
            for attr in name.split("."):
                mod = getattr(mod, attr, None) if mod is not None else None
            if mod is None:
                continue
            mod.register_forward_pre_hook(lambda _m, _a, n=name: self._start(n))
            mod.register_forward_hook(lambda _m, _a, _o, n=name: self._stop(n))

    def _start(self, name: str) -> None:
        self._t0[name] = time.perf_counter()

    def _stop(self, name: str) -> None:
        self.ms[name] += (time.perf_counter() - self._t0.pop(name)) * 1000.0

    def reset(self) -> None:
        self.ms.clear()


def _data(root: Path) -> Path:
    if not any(root.glob("v1.0-*/scene.json")):
        make_synthetic_dataset(root, n_scenes=2, n_samples=12, image_size=(225, 400), seed=0)
    return root


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _as_before(samples: list[dict]) -> list[dict]:
    """The text of the first version: the QA pair repeating the meta-action kept (its answer marked so the processor
    does not drop it; same token count)."""
    return [
        {**s, "qa": [(q, f"{a} ." if a == s["meta_action"] else a) for q, a in s.get("qa", [])]}
        for s in samples
    ]


def time_stage(
    stage: int, preset: str, ds: NuScenesOccDataset, tok, args, before: bool = False
) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_model(preset)
    set_trainable(model, stage, lora=False)
    model.train()
    proc = OccVLAProcessor.for_config(model.config, tok, include_qa=stage in (1, 2))
    opt = make_optimizer(model, 1e-4, 0.01)
    timer = PartTimer(model)
    rows: dict[str, list[float]] = defaultdict(list)
    n = len(ds)
    for step in range(args.steps + 1):  # the first step warms up (allocator, oneDNN kernels)
        idx = [(step * args.batch + i) % n for i in range(args.batch)]
        timer.reset()
        t0 = time.perf_counter()
        samples = _stage_samples([ds[i] for i in idx], stage)
        samples = _as_before(samples) if before else samples
        t_load = _ms(t0)
        t0 = time.perf_counter()
        batch = proc(samples, train=True)
        t_coll = _ms(t0)
        t0 = time.perf_counter()
        res = model(batch, compute_occupancy=stage == 2)
        loss = {1: res.text_loss, 2: res.loss, 3: res.plan_loss}[stage]
        t_fwd = _ms(t0)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t_bwd = _ms(t0)
        t0 = time.perf_counter()
        opt.step()
        t_opt = _ms(t0)
        if step == 0:
            continue
        rows["load"].append(t_load)
        rows["collate"].append(t_coll)
        for name in PARTS:
            rows[f"fwd_{name.replace('.', '_')}"].append(timer.ms.get(name, 0.0))
        rows["fwd_rest"].append(t_fwd - sum(timer.ms.values()))
        rows["backward"].append(t_bwd)
        rows["optimizer"].append(t_opt)
        rows["total"].append(t_load + t_coll + t_fwd + t_bwd + t_opt)
        rows["tokens"].append(float(batch["input_ids"].shape[1]))
    out = {k: statistics.median(v) for k, v in rows.items()}
    if stage == 3:  # the cached path: planner inputs once per sample, then the head alone
        model.eval()
        t0 = time.perf_counter()
        feats = []
        for start in range(0, min(n, 2 * args.batch), args.batch):
            batch = proc(
                _stage_samples([ds[i] for i in range(start, min(n, start + args.batch))], 3), train=True
            )
            with torch.no_grad():
                feats.append(model.planner_inputs(batch))
        per_sample = _ms(t0) / min(n, 2 * args.batch)
        meta, vel, visual = (torch.cat([f[k] for f in feats])[: args.batch] for k in range(3))
        traj = torch.zeros(args.batch, model.config.num_waypoints, 2)
        cached = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            pred = model.planner(meta, vel, visual)
            loss = (pred - traj).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            cached.append(_ms(t0))
        out["cache_per_sample"] = per_sample
        out["cached_step"] = statistics.median(cached)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=["tiny", "small"])
    ap.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    ap.add_argument("--steps", type=int, default=4, help="timed steps per stage (after one warm-up step)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument(
        "--before", action="store_true", help="stages 1-2 also with the first version's text (baseline)"
    )
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache" / "occvla" / "bench_train_step")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_model(args.preset).config
    ds = NuScenesOccDataset(_data(args.data), image_size=cfg.vision.image_size, occ_grid=tuple(cfg.occ.grid))
    questions = sorted({q for i in range(min(len(ds), 8)) for q, _ in ds[i].get("qa", [])})
    tok = build_tokenizer(vocab_size=cfg.text.vocab_size, questions=questions)
    result: dict[str, float | int | str] = {
        "preset": args.preset,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
    }
    runs = [(s, False) for s in args.stages]
    if args.before:
        plain_tok = build_tokenizer(
            vocab_size=cfg.text.vocab_size
        )  # questions and commands spelt word by word
        runs = [(s, b) for s in args.stages for b in ((True, False) if s in (1, 2) else (False,))]
    for stage, before in runs:
        r = time_stage(stage, args.preset, ds, plain_tok if before else tok, args, before)
        if before:
            print(
                "\nBEFORE (first version's text: QA pair repeating the meta-action, word-by-word questions)"
            )
        print(f"\nstage {stage} (batch {args.batch}, {int(r['tokens'])} tokens), median ms per step:")
        for k, v in r.items():
            if k != "tokens":
                whole = k in ("total", "cached_step", "cache_per_sample")
                share = "" if whole else f"{100 * v / r['total']:5.1f} %"
                print(f"  {k:<22} {v:9.1f} {share}")
        tag = f"s{stage}_before" if before else f"s{stage}"
        result.update({f"{tag}_{k}" + ("" if k == "tokens" else "_ms"): round(v, 1) for k, v in r.items()})
    print(json.dumps(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
