"""occvla-train: tiny stage 0 / 2 / 3 runs on synthetic data, run directories that load, resume, config errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from occvla.data import make_synthetic_dataset
from occvla.train import compose_config, run
from occvla.vqvae import OccVQVAE

FAST = ["model=tiny", "train.progress=false", "train.eval_max_samples=1", "train.eval_batch_size=1",
        "train.batch_size=2", "train.log_every=1", "train.warmup_steps=1"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is about as fast and far steadier on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "syn", n_scenes=2, n_samples=7,
                                  image_size=(64, 112), seed=0)


def _run(*overrides: str):
    return run(compose_config([*FAST, *overrides]))


@pytest.fixture(scope="module")
def stage_dirs(data_root: Path, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    d = {k: base / k for k in ("vq", "s2")}
    _run("train=stage0_vqvae", "train.steps=2", f"data.root={data_root}", f"run_dir={d['vq']}")
    _run("train=stage2_joint", "train.steps=1", f"data.root={data_root}", f"model.vqvae_path={d['vq']}",
         f"run_dir={d['s2']}")
    return d


def _csv_steps(run_dir: Path, split: str = "train") -> list[int]:
    with (run_dir / "metrics.csv").open() as f:
        return sorted({int(r["step"]) for r in csv.DictReader(f) if r["split"] == split})


def test_stage0_and_stage2_run_dirs_load(stage_dirs: dict[str, Path]) -> None:
    from occvla.run_dir import load_run_dir

    vq = OccVQVAE.load(stage_dirs["vq"] / "vqvae.safetensors")
    from occvla.config import preset_config

    assert vq.cfg.grid == tuple(preset_config("tiny").occ.grid)  # the tiny preset's pooled grid
    assert {"occ_miou", "codebook_used"} <= set(_read_metrics(stage_dirs["vq"]))
    model, _, cfg = load_run_dir(stage_dirs["s2"])
    assert cfg["train"]["stage"] == 2 and "occ_miou" in cfg["metrics"] and "l2_stp3_avg" in cfg["metrics"]
    # the stage-0 VQ-VAE is inside the OccVLA weights, untouched by stage 2
    for k, v in vq.state_dict().items():
        assert torch.equal(model.vqvae.state_dict()[k], v), k
    card = (stage_dirs["s2"] / "README.md").read_text()
    assert "## Metrics" in card and "synthetic" in card
    assert _csv_steps(stage_dirs["s2"]) == [1]
    assert (stage_dirs["s2"] / "tb").is_dir()


def _read_metrics(run_dir: Path) -> dict[str, float]:
    with (run_dir / "metrics.csv").open() as f:
        return {r["name"]: float(r["value"]) for r in csv.DictReader(f) if r["split"] != "train"}


def test_stage3_resume_matches_uninterrupted_run(stage_dirs: dict[str, Path], data_root: Path, tmp_path: Path) -> None:
    from occvla.policy import OccVLAPolicy
    from occvla.run_dir import load_run_dir

    common = ["train=stage3_planning", "train.steps=2", f"data.root={data_root}", f"model.init_from={stage_dirs['s2']}",
              "train.eval_max_samples=0"]  # no eval pass: this test is about resuming
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(*common, "train.stop_at=1", f"run_dir={a}") is None  # "pre-empted" after step 1
    assert not (a / "model.safetensors").exists() and _csv_steps(a) == [1]
    _run(*common, "resume=true", f"run_dir={a}")
    assert _csv_steps(a) == [1, 2]
    _run(*common, f"run_dir={b}")
    ma, _, _ = load_run_dir(a)
    mb, _, _ = load_run_dir(b)
    s2, _, _ = load_run_dir(stage_dirs["s2"])
    for (name, pa), pb, _p0 in zip(ma.planner.state_dict().items(), mb.planner.state_dict().values(),
                                  s2.planner.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6), name  # resumed == uninterrupted
    assert any(not torch.equal(p, q) for p, q in zip(ma.planner.parameters(), s2.planner.parameters(), strict=True))
    assert torch.equal(ma.vlm.model.language_model.embed_tokens.weight, s2.vlm.model.language_model.embed_tokens.weight)
    out = OccVLAPolicy.from_run_dir(a).predict(np.zeros((6, 64, 64, 3), np.uint8), 5.0, 4)
    assert out.waypoints.shape == (6, 2) and isinstance(out.meta_action, str)
    with pytest.raises(ValueError, match="resume=true"):
        _run(*common, f"run_dir={b}")


def test_unknown_config_keys_fail() -> None:
    with pytest.raises(Exception, match="lr_typo"):
        compose_config(["train.lr_typo=1"])
    with pytest.raises(ValueError, match="lr_typo"):
        run(compose_config(["+train.lr_typo=1"]))
    with pytest.raises(Exception, match="nonexistent"):
        compose_config(["model=nonexistent"])
    cfg = compose_config(["model=tiny", "+model.overrides={text: {num_layerz: 2}}", "train=stage1_vqa"])
    with pytest.raises(ValueError, match="num_layerz"):
        from occvla.training.stage0 import vqvae_config_for

        vqvae_config_for(cfg)


def test_cli_reports_unknown_key_in_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "occvla.train", "train.lr_typo=1", f"run_dir={tmp_path / 'x'}"],
                       check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if "lr_typo" in ln]
    assert lines, r.stderr
    assert "Traceback" not in r.stderr
