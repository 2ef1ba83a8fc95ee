"""`make train-small`: collect the training data, train stages 0..3, export checkpoints/occvla-small. Resumable.

    python scripts/train_small.py [--work DIR] [--data DIR] [--config configs/pipeline/train-small.yaml] [--dry-run]
                                  [key=value ...]   # PipelineConfig overrides, e.g. model=tiny

Steps, each skipped when its output is complete and resumed when a kill interrupted it:
  1. collect   `occvla-collect --plan <collect_plan> --out <work>/data --workers N [--resume]` (generated towns only)
  2. stage0..3 `occvla-train model=<model> train=<stage> data=nuscenes data.root=<work>/data run_dir=<work>/<stage>
               resume=true ...`, each stage initialised from the previous one (stage 1 from stage 0's VQ-VAE)
  3. DAgger    ``dagger_rounds`` times: the latest model drives the ``dagger_plan`` towns with the expert in shadow
               mode (`occvla-collect --plan dagger agent_config=<latest stage-3 run>` -> <work>/dagger<r>), every
               dataset so far is merged (<work>/data_dagger<r>), stage 2 continues on it from the latest stage-2 run
               and stage 3 follows (<work>/dagger<r>_stage2, <work>/dagger<r>_stage3)
  4. export    the last stage-3 run directory -> <export_dir>: config.yaml, model.safetensors (fp16 weights: the
               60 MB budget; loading casts back to fp32), tokenizer/, README.md (model card + this pipeline's data,
               steps, wall time per step, metrics)
Wall time per step is kept in <work>/pipeline_state.json (summed over resumed attempts) and goes into the card.
Nothing is faked: a failed step stops the pipeline with its exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("stage0_vqvae", "stage1_vqa", "stage2_joint", "stage3_planning")
DAGGER_STAGES = ("stage2_joint", "stage3_planning")
STATE_FILE = "pipeline_state.json"


@dataclass
class PipelineConfig:
    """configs/pipeline/train-small.yaml."""

    collect_plan: str = "train-small"
    collect_overrides: list[str] = field(default_factory=list)
    workers: int = 2
    model: str = "small"
    threads: int | None = 2
    stages: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in STAGES})
    dagger_rounds: int = 0
    dagger_plan: str = "dagger"
    dagger_overrides: list[str] = field(default_factory=list)  # of the DAgger collect plan
    # occvla-train overrides of the DAgger rounds' stage 2 and stage 3 (configs/train/<name>.yaml holds the rest)
    dagger_stages: dict[str, list[str]] = field(
        default_factory=lambda: {"stage2_joint": [], "stage3_planning": []})
    export_dir: str = "checkpoints/occvla-small"
    max_export_mb: float = 60.0


def load_config(path: Path, overrides: list[str]) -> PipelineConfig:
    from omegaconf import OmegaConf

    base = OmegaConf.structured(PipelineConfig)
    try:
        cfg = OmegaConf.merge(base, OmegaConf.load(path), OmegaConf.from_dotlist(overrides))
    except Exception as e:  # noqa: BLE001 - omegaconf raises several types
        raise ValueError(f"invalid pipeline config: {str(e).splitlines()[0]}") from None
    out = PipelineConfig(**OmegaConf.to_container(cfg, resolve=True))
    if set(out.stages) != set(STAGES):
        raise ValueError(f"pipeline stages must be exactly {list(STAGES)}, got {sorted(out.stages)}")
    if set(out.dagger_stages) != set(DAGGER_STAGES):
        raise ValueError(f"dagger_stages must be exactly {list(DAGGER_STAGES)}, got {sorted(out.dagger_stages)}")
    if out.dagger_rounds < 0:
        raise ValueError(f"dagger_rounds must be >= 0, got {out.dagger_rounds}")
    return out


class State:
    """Per-step completion and wall seconds, written atomically after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = json.loads(path.read_text()) if path.is_file() else {"steps": {}}

    def step(self, name: str) -> dict:
        return self.data["steps"].setdefault(name, {"done": False, "seconds": 0.0})

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def collect_command(cfg: PipelineConfig, data: Path, plan: str | None = None,
                    overrides: list[str] | None = None) -> list[str]:
    """`occvla-collect` of ``plan`` (default: the pipeline's collect plan) into ``data``, resuming a started one."""
    cmd = [sys.executable, "-m", "leaderboard.collect", "--plan", plan or cfg.collect_plan, "--out", str(data),
           "--workers", str(cfg.workers), "--no-progress"]
    if data.exists():
        cmd.append("--resume")
    return [*cmd, *(cfg.collect_overrides if overrides is None else overrides)]


def train_command(cfg: PipelineConfig, stage: str, run_dir: Path, data: Path, init: list[str],
                  overrides: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "occvla.train", f"model={cfg.model}", f"train={stage}", "data=nuscenes",
           f"data.root={data}", f"run_dir={run_dir}", "resume=true"]
    if cfg.threads:
        cmd.append(f"threads={cfg.threads}")
    return [*cmd, *init, *overrides]


def stage_command(cfg: PipelineConfig, stage: str, work: Path, data: Path | None = None) -> list[str]:
    i = STAGES.index(stage)
    init = [f"model.vqvae_path={work / STAGES[0]}"] if i == 1 else [f"model.init_from={work / STAGES[i - 1]}"] if i else []
    return train_command(cfg, stage, work / stage, data or work / "data", init, cfg.stages[stage])


def dagger_steps(cfg: PipelineConfig, work: Path, data: Path) -> list[tuple[str, list[str], Path]]:
    """(step name, command, its output) of every DAgger round, in order."""
    steps, datasets = [], [data]
    stage2, stage3 = work / "stage2_joint", work / "stage3_planning"
    for r in range(1, cfg.dagger_rounds + 1):
        round_data, merged = work / f"dagger{r}", work / f"data_dagger{r}"
        collect = collect_command(cfg, round_data, cfg.dagger_plan, [f"agent_config={stage3}", *cfg.dagger_overrides])
        datasets.append(round_data)
        merge = [sys.executable, "-m", "leaderboard.collect", "--merge", *map(str, datasets), "--out", str(merged)]
        next2, next3 = work / f"dagger{r}_stage2", work / f"dagger{r}_stage3"
        steps += [
            (f"dagger{r}_collect", collect, round_data),
            (f"dagger{r}_merge", merge, merged),
            (f"dagger{r}_stage2", train_command(cfg, "stage2_joint", next2, merged, [f"model.init_from={stage2}"],
                                                cfg.dagger_stages["stage2_joint"]), next2),
            (f"dagger{r}_stage3", train_command(cfg, "stage3_planning", next3, merged, [f"model.init_from={next2}"],
                                                cfg.dagger_stages["stage3_planning"]), next3),
        ]
        stage2, stage3 = next2, next3
    return steps


def step_finished(name: str, output: Path) -> bool:
    if name.endswith(("_collect", "_merge")):
        return collection_finished(output)
    return (output / "model.safetensors").is_file()


def stage_finished(stage: str, work: Path) -> bool:
    out = "vqvae.safetensors" if stage == STAGES[0] else "model.safetensors"
    return (work / stage / out).is_file()


def collection_finished(data: Path) -> bool:
    card = data / "dataset_card.json"
    if not card.is_file():
        return False
    c = json.loads(card.read_text())
    if c.get("complete") is not None:  # a plan's card knows whether every planned episode finished
        return bool(c["complete"])
    return bool(c.get("counts", {}).get("samples")) and not c["counts"].get("unfinished_scenes")


def export_run_dir(
    src: Path, dst: Path, card_extra: str, max_mb: float, local_paths: dict[str, Path] | None = None
) -> float:
    """Copy a run directory's shippable part to ``dst`` with fp16 weights (tensors that fp16 cannot hold stay
    fp32); atomic (a sibling temp folder renamed into place). The machine's own folders named in ``local_paths``
    (placeholder -> path, e.g. ``{"<work>": work}``) become their placeholders in config.yaml and the card: they
    mean nothing on another machine, and loading reads only the model section. Returns the size in MB."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with safe_open(str(src / "model.safetensors"), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {}
        for k in f.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
            t = f.get_tensor(k)
            if t.is_floating_point() and t.dtype == torch.float32:
                half = t.half()
                t = half if bool(torch.isfinite(half).all()) else t
            tensors[k] = t.contiguous()
    save_file(tensors, str(tmp / "model.safetensors"), metadata={**meta, "export_dtype": "float16"})
    shutil.copytree(src / "tokenizer", tmp / "tokenizer")
    card = (src / "README.md").read_text() if (src / "README.md").is_file() else ""
    texts = {"config.yaml": (src / "config.yaml").read_text(),
             "README.md": card.rstrip() + "\n\n" + card_extra.rstrip() + "\n"}
    # longest first: a data folder inside the work folder keeps its own placeholder
    for name, path in sorted((local_paths or {}).items(), key=lambda kv: -len(str(kv[1]))):
        texts = {k: v.replace(str(path), name) for k, v in texts.items()}
    for k, v in texts.items():
        (tmp / k).write_text(v)
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) / 1e6
    if size > max_mb:
        shutil.rmtree(tmp)
        raise ValueError(f"the export is {size:.1f} MB, over the {max_mb:g} MB budget")
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return size


def pipeline_card(cfg: PipelineConfig, state: State, work: Path, data: Path) -> str:
    lines = ["## How this checkpoint was made (`make train-small`)", "",
             f"Pipeline config: `{json.dumps(dataclasses.asdict(cfg))}`", "",
             "| step | wall time (min) | output |", "|---|---|---|"]
    total = 0.0
    for name in ("collect", *STAGES, *(n for n, _, _ in dagger_steps(cfg, work, data))):
        s = state.step(name)
        total += s["seconds"]
        note = s.get("note", "") or (f"{s['attempts']} attempts (resumed)" if s.get("attempts", 1) > 1 else "")
        lines.append(f"| {name} | {s['seconds'] / 60:.1f} | {note} |")
    lines += [f"| total | {total / 60:.1f} | |", ""]
    card = data / "dataset_card.json"
    if card.is_file():
        c = json.loads(card.read_text())
        lines += [f"Data: {c['counts']['samples']} key frames in {c['counts']['scenes']} scenes; towns "
                  f"{', '.join(c.get('towns', []))}; splits {json.dumps(c.get('splits', {}))}.", ""]
    return "\n".join(lines)


def run_step(name: str, cmd: list[str], state: State, dry_run: bool) -> None:
    print(f"[train-small] {name}: {' '.join(cmd)}", flush=True)
    if dry_run:
        return
    t0 = time.time()
    try:
        rc = subprocess.run(cmd, cwd=REPO, check=False).returncode
    finally:  # a killed attempt's time counts too (the card reports the total over attempts)
        s = state.step(name)
        s["seconds"] += time.time() - t0
        s["attempts"] = s.get("attempts", 0) + 1
        state.save()
    if rc != 0:
        raise SystemExit(f"[train-small] {name} failed (exit {rc}); fix it and rerun: finished steps are kept")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "occvla" / "train-small",
                    help="data and run directories (outside the repository)")
    ap.add_argument("--data", type=Path, default=None,
                    help="the collected dataset (default WORK/data); an existing complete one is used as it is")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "pipeline" / "train-small.yaml")
    ap.add_argument("--dry-run", action="store_true", help="print the commands of the unfinished steps only")
    ap.add_argument("overrides", nargs="*", help="PipelineConfig overrides, e.g. model=tiny workers=1")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ValueError as e:
        print(f"train-small: error: {e}", file=sys.stderr)
        return 2
    # `kill` (SIGTERM) unwinds like Ctrl-C: the running step's child is stopped and its wall time saved
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    state = State(work / STATE_FILE)
    data = (args.data or work / "data").resolve()
    if not collection_finished(data):
        run_step("collect", collect_command(cfg, data), state, args.dry_run)
        if not args.dry_run and not collection_finished(data):
            raise SystemExit(f"[train-small] collect finished without a complete dataset in {data}")
    for stage in STAGES:
        if not stage_finished(stage, work):
            run_step(stage, stage_command(cfg, stage, work, data), state, args.dry_run)
    final = work / STAGES[-1]
    for name, cmd, output in dagger_steps(cfg, work, data):
        if not step_finished(name, output):
            if name.endswith("_merge") and output.exists() and not args.dry_run:
                shutil.rmtree(output)  # a merge killed half-way: hard links, redone in seconds
            run_step(name, cmd, state, args.dry_run)
            if not args.dry_run and not step_finished(name, output):
                raise SystemExit(f"[train-small] {name} finished without a complete output in {output}")
        final = output
    if args.dry_run:
        return 0
    for name in ("collect", *STAGES, *(n for n, _, _ in dagger_steps(cfg, work, data))):
        state.step(name)["done"] = True
    state.save()
    dst = (REPO / cfg.export_dir) if not Path(cfg.export_dir).is_absolute() else Path(cfg.export_dir)
    size = export_run_dir(final, dst, pipeline_card(cfg, state, work, data), cfg.max_export_mb,
                          local_paths={"<work>": work, "<data>": data})
    print(f"[train-small] wrote {dst} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
