"""scripts/train_small.py (`make train-small`): step order and resumption, the fp16 export within budget."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _pipeline():
    spec = importlib.util.spec_from_file_location("train_small", REPO / "scripts" / "train_small.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_small"] = mod  # dataclasses resolve their module
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_lists_only_unfinished_steps_in_order(tmp_path, capsys):
    ts = _pipeline()
    assert ts.main(["--work", str(tmp_path), "--dry-run"]) == 0
    names = [ln.split(":")[0].split()[-1] for ln in capsys.readouterr().out.splitlines()]
    dagger: list[str] = []  # the shipped recipe runs no DAgger round
    assert names == ["collect", *ts.STAGES, *dagger]
    # a complete dataset and a finished stage 0: the rerun goes on with stage 1, initialised from stage 0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_card.json").write_text(
        json.dumps({"counts": {"samples": 10, "unfinished_scenes": 0}}))
    (tmp_path / "stage0_vqvae").mkdir()
    (tmp_path / "stage0_vqvae" / "vqvae.safetensors").write_bytes(b"")
    assert ts.main(["--work", str(tmp_path), "--dry-run", "model=tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0].split()[-1] for ln in lines] == [*ts.STAGES[1:], *dagger]
    assert f"model.vqvae_path={tmp_path / 'stage0_vqvae'}" in lines[0] and "model=tiny" in lines[0]
    assert "resume=true" in lines[0] and f"model.init_from={tmp_path / 'stage1_vqa'}" in lines[1]


def test_a_plan_stopped_between_episodes_is_collected_again(tmp_path):
    ts = _pipeline()
    data = tmp_path / "data"
    data.mkdir()
    card = {"counts": {"samples": 10, "unfinished_scenes": 0}, "complete": False}  # 24 of 36 episodes, say
    (data / "dataset_card.json").write_text(json.dumps(card))
    assert not ts.collection_finished(data)
    (data / "dataset_card.json").write_text(json.dumps({**card, "complete": True}))
    assert ts.collection_finished(data)


def test_unknown_pipeline_key_is_one_line(tmp_path, capsys):
    assert _pipeline().main(["--work", str(tmp_path), "--dry-run", "modle=tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert "modle" in err and "\n" not in err


def test_export_is_fp16_within_budget_and_loads(tmp_path):
    from occvla import OccVLAPolicy, OccVLAProcessor, build_model, save_run_dir, tokenizer_for_config

    ts = _pipeline()
    torch.manual_seed(0)
    model = build_model("tiny")
    src = save_run_dir(tmp_path / "s3", model, OccVLAProcessor.for_config(model.config,
                                                                        tokenizer_for_config(model.config)))
    with (src / "config.yaml").open("a") as f:  # as occvla-train records its run (the training machine's folders)
        f.write(f"run_dir: {src}\ndata:\n  root: {tmp_path / 'data'}\n")
    size = ts.export_run_dir(src, tmp_path / "ship", f"## Pipeline\n\nwall time, data {tmp_path / 'data'}",
                             max_mb=60, local_paths={"<work>": tmp_path, "<data>": tmp_path / "data"})
    full = (src / "model.safetensors").stat().st_size / 1e6
    assert size < 0.6 * full + 1.0  # half-size weights
    assert "## Pipeline" in (tmp_path / "ship" / "README.md").read_text()
    for name in ("README.md", "config.yaml"):  # no folder of the training machine ships
        text = (tmp_path / "ship" / name).read_text()
        assert str(tmp_path) not in text
    assert "data <data>" in (tmp_path / "ship" / "README.md").read_text()
    shipped = (tmp_path / "ship" / "config.yaml").read_text()
    assert "run_dir: <work>/s3" in shipped and "root: <data>" in shipped
    images = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    a = OccVLAPolicy.from_run_dir(src).predict(images, 5.0, 4)
    b = OccVLAPolicy.from_run_dir(tmp_path / "ship").predict(images, 5.0, 4)
    assert a.meta_action == b.meta_action
    np.testing.assert_allclose(a.waypoints, b.waypoints, atol=0.05)
    with pytest.raises(ValueError, match="budget"):
        ts.export_run_dir(src, tmp_path / "too_big", "", max_mb=0.5)
    assert not (tmp_path / "too_big").exists()


@pytest.mark.slow  # collects a tiny dataset in the simulator and trains the tiny preset: a few minutes
def test_pipeline_end_to_end_on_the_tiny_plan(tmp_path):
    from occvla.run_dir import load_run_dir

    ts = _pipeline()
    steps = [f"stages.{s}=[train.steps=2,train.eval_max_samples=2,train.progress=false]" for s in ts.STAGES]
    args = ["--work", str(tmp_path / "work"), "collect_plan=tiny", "model=tiny", "workers=1", "threads=1",
            f"export_dir={tmp_path / 'ship'}", *steps]
    assert ts.main(args) == 0
    model, _, cfg = load_run_dir(tmp_path / "ship")
    assert cfg["train"]["stage"] == 3 and model.config.preset == "tiny"
    card = (tmp_path / "ship" / "README.md").read_text()
    assert "make train-small" in card and "| total |" in card
    state = json.loads((tmp_path / "work" / "pipeline_state.json").read_text())
    assert all(s["done"] and s["seconds"] > 0 for s in state["steps"].values())
    assert ts.main(args) == 0  # a rerun finds every step done and only exports again
    state2 = json.loads((tmp_path / "work" / "pipeline_state.json").read_text())
    assert state2 == state


def test_a_killed_step_keeps_its_wall_time(tmp_path):
    """`kill` of the pipeline during a step: the step's child stops and the attempt's seconds are saved (the card's
    wall times are totals over resumed attempts)."""
    import signal
    import subprocess
    import time

    code = (
        "import sys, signal, importlib.util, pathlib\n"
        f"spec = importlib.util.spec_from_file_location('train_small', {str(REPO / 'scripts' / 'train_small.py')!r})\n"
        "ts = importlib.util.module_from_spec(spec); sys.modules['train_small'] = ts; spec.loader.exec_module(ts)\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        f"state = ts.State(pathlib.Path({str(tmp_path / 'state.json')!r}))\n"
        "print('ready', flush=True)\n"
        "ts.run_step('stage1_vqa', [sys.executable, '-c', 'import time; time.sleep(60)'], state, False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    step = json.loads((tmp_path / "state.json").read_text())["steps"]["stage1_vqa"]
    assert 1.0 < step["seconds"] < 30 and step["attempts"] == 1 and not step["done"]


def test_dagger_rounds_follow_the_base_stages_each_from_the_latest_model(tmp_path, capsys):
    """A DAgger round: the latest stage-3 model drives the dagger plan, all data so far are merged, stage 2 goes on
    from the latest stage-2 run and stage 3 from it; the next round starts from those."""
    ts = _pipeline()
    assert ts.main(["--work", str(tmp_path), "--dry-run", "dagger_rounds=2",
                    "dagger_stages.stage2_joint=[train.steps=7]"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [ln.split(":")[0].split()[-1] for ln in lines]
    rounds = [f"dagger{r}_{s}" for r in (1, 2) for s in ("collect", "merge", "stage2", "stage3")]
    assert names == ["collect", *ts.STAGES, *rounds]
    cmd = dict(zip(names, lines, strict=True))
    assert "--plan dagger" in cmd["dagger1_collect"] and f"agent_config={tmp_path / 'stage3_planning'}" in cmd[
        "dagger1_collect"]
    assert f"--merge {tmp_path / 'data'} {tmp_path / 'dagger1'} {tmp_path / 'dagger2'}" in cmd["dagger2_merge"]
    assert f"agent_config={tmp_path / 'dagger1_stage3'}" in cmd["dagger2_collect"]
    assert f"model.init_from={tmp_path / 'dagger1_stage2'}" in cmd["dagger2_stage2"]
    assert f"data.root={tmp_path / 'data_dagger2'}" in cmd["dagger2_stage3"]
    assert "train.steps=7" in cmd["dagger1_stage2"] and "train.steps=7" not in cmd["stage2_joint"]
    assert ts.main(["--work", str(tmp_path), "--dry-run", "dagger_rounds=-1"]) == 2
