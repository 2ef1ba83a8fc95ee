"""Run directory + OccVLAPolicy: save/load round trip, inference outputs, one-line errors for bad inputs/files."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from occvla.model import build_model
from occvla.peft_utils import merge_peft, wrap_with_peft
from occvla.policy import OccVLAPolicy, PolicyOutput
from occvla.processor import OccVLAProcessor
from occvla.run_dir import load_run_dir, save_run_dir
from occvla.tokenizer import build_tokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread is faster under contention
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LoRA-wrapped model with non-trivial adapters, saved as a run directory."""
    torch.manual_seed(0)
    model = wrap_with_peft(build_model("tiny"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    proc = OccVLAProcessor.for_config(model.config, build_tokenizer())
    run = tmp_path_factory.mktemp("run")
    cfg = {"data": {"root": "/data/carla", "samples": 12}, "train": {"stage": 2, "seed": 0}}
    save_run_dir(run, model, proc, cfg, metrics={"l2_avg": 0.42, "miou": 0.31})
    return model, proc, run


def _images(seed: int = 0, n: int = 6, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_run_dir_contents(trained):
    _, _, run = trained
    assert {p.name for p in run.iterdir()} == {"config.yaml", "model.safetensors", "tokenizer", "README.md"}
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["preset"] == "tiny" and cfg["peft"]["r"] == 8 and cfg["train"]["stage"] == 2
    card = (run / "README.md").read_text()
    assert "| l2_avg | 0.42 |" in card and "/data/carla" in card and "tiny preset" in card


def test_round_trip_gives_identical_predictions(trained):
    model, proc, run = trained
    reference = OccVLAPolicy(merge_peft(copy.deepcopy(model)), proc)  # the in-memory model, exported
    policy = OccVLAPolicy.from_run_dir(run)
    assert policy.model.lora is None  # adapters merged on load
    for seed, speed, command in ((0, 4.0, 4), (1, 11.5, 1)):
        a = reference.predict(_images(seed), speed, command, return_occupancy=True)
        b = policy.predict(_images(seed), speed, command, return_occupancy=True)
        assert a.meta_action == b.meta_action
        assert np.array_equal(a.waypoints, b.waypoints) and np.array_equal(a.occupancy, b.occupancy)


def test_round_trip_without_lora(tmp_path):
    torch.manual_seed(1)
    model = build_model("tiny")
    proc = OccVLAProcessor.for_config(model.config, build_tokenizer())
    save_run_dir(tmp_path, model, proc)
    loaded, proc2, cfg = load_run_dir(tmp_path)
    assert cfg["peft"] is None
    for (n, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    a = OccVLAPolicy(model, proc).predict(_images(3), 5.0, 3)
    b = OccVLAPolicy(loaded, proc2).predict(_images(3), 5.0, 3)
    assert a.meta_action == b.meta_action and np.array_equal(a.waypoints, b.waypoints)


def test_predict_outputs(trained):
    _, _, run = trained
    policy = OccVLAPolicy.from_run_dir(run)
    out = policy.predict(_images(), 8.0, 4)
    assert isinstance(out, PolicyOutput) and isinstance(out.meta_action, str)
    assert out.waypoints.shape == (6, 2) and out.waypoints.dtype == np.float32
    assert out.occupancy is None  # the branch is skipped unless asked for
    occ = policy.predict(_images(), 8.0, 4, return_occupancy=True)
    assert occ.occupancy.shape == tuple(policy.model.config.occ.grid) and occ.occupancy.dtype == np.uint8
    assert np.array_equal(occ.waypoints, out.waypoints)


@pytest.mark.parametrize(
    "images, message",
    [
        (_images(n=5), "expected 6 camera images, got 5"),
        (_images(size=32), "expected images of 64x64 pixels .*got 32x32"),
        (np.full((6, 64, 64, 3), np.nan, np.float32), "NaN/inf pixel values"),
    ],
)
def test_bad_images_give_one_line_errors(trained, images, message):
    model, proc, _ = trained
    policy = OccVLAPolicy(model, proc)
    with pytest.raises(ValueError, match=message) as err:
        policy.predict(images, 5.0, 4)
    assert "\n" not in str(err.value)


def _corrupt(run: Path, what: str) -> None:
    if what.startswith("missing:"):
        (run / what.split(":", 1)[1]).unlink()
    elif what == "garbage weights":
        (run / "model.safetensors").write_bytes(b"\x00\x01not a safetensors file" * 10)
    elif what == "truncated weights":
        data = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif what == "bad yaml":
        (run / "config.yaml").write_text("model: [unclosed\n  - x: {")
    elif what == "unknown key":
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        cfg["model"]["text"]["num_layerz"] = 3
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    elif what == "weights do not match config":
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        cfg["model"]["text"]["num_layers"] = 2
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    elif what == "bad tokenizer":
        (run / "tokenizer" / "tokenizer.json").write_text("{ not json")


@pytest.mark.parametrize(
    "what, exc, message",
    [
        ("missing:config.yaml", FileNotFoundError, "is missing config.yaml"),
        ("missing:model.safetensors", FileNotFoundError, "is missing model.safetensors"),
        (
            "missing:tokenizer/processor_config.json",
            FileNotFoundError,
            "is missing tokenizer/processor_config.json",
        ),
        ("garbage weights", ValueError, "corrupt model.safetensors"),
        ("truncated weights", ValueError, "corrupt model.safetensors"),
        ("bad yaml", ValueError, "corrupt config.yaml"),
        ("unknown key", ValueError, "unknown config key 'text.num_layerz'"),
        ("weights do not match config", ValueError, "does not match its config.yaml"),
        ("bad tokenizer", ValueError, "cannot load the tokenizer"),
    ],
)
def test_broken_run_dirs_give_one_line_errors(trained, tmp_path, what, exc, message):
    _, _, run = trained
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    _corrupt(broken, what)
    with pytest.raises(exc, match=message) as err:
        OccVLAPolicy.from_run_dir(broken)
    assert "\n" not in str(err.value)


def test_missing_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        OccVLAPolicy.from_run_dir(tmp_path / "nope")
