"""OccVLA latency and memory on this machine: inference (with/without the occupancy branch) and a training step.

    python benchmarks/model_latency.py --preset small [--reps 15] [--train-reps 4]

Ends with ONE JSON line: predict_ms_median (six cameras, greedy meta-action, planning head), predict_with_occ_ms_median,
skip_overhead_ratio (branch skipped vs a model built without it, same weights; target <= 1.02),
train_step_ms_median (batch 4, all three losses, AdamW step), peak_rss_mb, params.

Weights are random (latency does not depend on them): decoding is constrained to the meta-action vocabulary, so it
always runs as many LM steps as a meta-action has tokens (2 with the offline tokenizer: "turn left" ", decelerate").
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import numpy as np
import torch

from occvla.model import build_model
from occvla.peft_utils import trainable_parameter_count
from occvla.policy import OccVLAPolicy
from occvla.processor import OccVLAProcessor
from occvla.tokenizer import build_tokenizer


def _sample(rng: np.random.Generator, cfg, meta_tokens: str = "turn left, decelerate") -> dict:
    s = cfg.vision.image_size
    grid = tuple(cfg.occ.grid)
    return {
        "images": rng.integers(0, 256, (cfg.num_cameras, s, s, 3), dtype=np.uint8),
        "speed": float(rng.uniform(0, 15)),
        "command": 4,
        "meta_action": meta_tokens,
        "trajectory": rng.normal(size=(cfg.num_waypoints, 2)).astype(np.float32),
        "occupancy": rng.integers(0, cfg.occ.num_classes, grid).astype(np.uint8),
        "mask_camera": rng.random(grid) < 0.7,
    }


def _time_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=["tiny", "small"])
    ap.add_argument("--reps", type=int, default=40, help="timed predictions per variant (interleaved)")
    ap.add_argument("--train-reps", type=int, default=4, help="timed training steps")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    tok = build_tokenizer(vocab_size=512 if args.preset == "tiny" else 1024)
    model = build_model(args.preset).eval()
    bare = build_model(args.preset, occ={"enabled": False}).eval()  # same backbone, built without the branch
    bare.load_state_dict({k: v for k, v in model.state_dict().items() if k in bare.state_dict()}, strict=True)
    proc = OccVLAProcessor.for_config(model.config, tok)
    policy, bare_policy = OccVLAPolicy(model, proc), OccVLAPolicy(bare, proc)

    s = _sample(rng, model.config)

    def call(pol: OccVLAPolicy, occ: bool = False) -> None:
        pol.predict(s["images"], s["speed"], s["command"], return_occupancy=occ)

    for pol in (policy, bare_policy):
        call(pol)
        call(pol)  # warm-up (allocator, oneDNN kernels)
    call(policy, True)
    skipped, without, with_occ = [], [], []
    for _ in range(args.reps):  # interleaved, so load from other processes hits all variants alike
        skipped.append(_time_ms(lambda: call(policy)))
        without.append(_time_ms(lambda: call(bare_policy)))
        with_occ.append(_time_ms(lambda: call(policy, True)))

    # training step: batch 4, fp32, all losses, AdamW
    train_model = build_model(args.preset).train()
    opt = torch.optim.AdamW([p for p in train_model.parameters() if p.requires_grad], lr=1e-4)
    batch = proc([_sample(rng, model.config) for _ in range(4)], train=True)

    def step() -> None:
        out = train_model(batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    step()
    train_ms = [_time_ms(step) for _ in range(args.train_reps)]
    _, total = trainable_parameter_count(model)
    med_skip, med_without = statistics.median(skipped), statistics.median(without)
    result = {
        "preset": args.preset,
        "params": total,
        "params_without_occ_branch": trainable_parameter_count(bare)[1],
        "image_tokens": model.config.image_tokens,
        "prompt_tokens": int(proc([s], train=False)["input_ids"].shape[1]),
        "meta_action_tokens": len(tok.encode(s["meta_action"], add_special_tokens=False)),
        "threads": torch.get_num_threads(),
        "predict_ms_median": round(med_skip, 1),
        "predict_without_branch_ms_median": round(med_without, 1),
        "predict_with_occ_ms_median": round(statistics.median(with_occ), 1),
        "skip_overhead_ratio": round(med_skip / med_without, 3),
        "train_step_ms_median": round(statistics.median(train_ms), 1),
        "train_batch_size": 4,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    print(json.dumps(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
