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


def test_stage3_can_switch_on_the_kinematic_prior_of_a_loaded_model(stage_dirs: dict[str, Path], data_root: Path,
                                                                     tmp_path: Path) -> None:
    """model.overrides with model.init_from: a behavioural switch (the planner's constant-velocity prior) reaches the
    head and the saved run; an architectural key is refused in one line rather than silently ignored."""
    from occvla.run_dir import load_run_dir

    common = ["train=stage3_planning", "train.steps=1", f"data.root={data_root}", f"model.init_from={stage_dirs['s2']}",
              "train.eval_max_samples=0"]
    _run(*common, "+model.overrides.planner.kinematic_prior=true", f"run_dir={tmp_path / 'prior'}")
    model, _, _ = load_run_dir(tmp_path / "prior")
    assert model.config.planner.kinematic_prior and model.planner.cfg.kinematic_prior
    assert not load_run_dir(stage_dirs["s2"])[0].config.planner.kinematic_prior
    with pytest.raises(ValueError, match=r"\['text.num_layers'\] cannot change a model loaded"):
        _run(*common, "+model.overrides.text.num_layers=3", f"run_dir={tmp_path / 'bad'}")
    # the head's shape may change in stage 3 (it trains from scratch there), never in stage 2
    with pytest.raises(ValueError, match=r"\['planner.visual_grid'\] cannot change a model loaded"):
        _run("train=stage2_joint", "train.steps=1", "train.eval_max_samples=0", f"data.root={data_root}",
             f"model.init_from={stage_dirs['s2']}", "+model.overrides.planner.visual_grid=2",
             f"run_dir={tmp_path / 'bad2'}")


def test_stage3_on_generated_meta_actions_with_a_spatial_head_then_predicts(stage_dirs: dict[str, Path],
                                                                             data_root: Path, tmp_path: Path) -> None:
    """The path a user takes: stage 3 with a 2x2 visual grid on both the label's and the model's own meta-actions
    (one cache row of each per sample), then the policy drives from the saved run with the same head."""
    from occvla.policy import OccVLAPolicy
    from occvla.run_dir import load_run_dir
    from occvla.training.data import build_datasets

    run_dir = tmp_path / "gen"
    _run("train=stage3_planning", "train.steps=2", f"data.root={data_root}", f"model.init_from={stage_dirs['s2']}",
         "train.planner_meta=both", "+model.overrides.planner.visual_grid=2", f"run_dir={run_dir}")
    model, _, cfg = load_run_dir(run_dir)
    assert model.config.planner.visual_grid == 2 and cfg["train"]["planner_meta"] == "both"
    v, d = model.config.num_cameras, model.config.planner.visual_dim
    assert model.planner.mlp[0].in_features == model.config.text.hidden_size + 2 + v * 4 * d
    s2, _, _ = load_run_dir(stage_dirs["s2"])
    assert s2.planner.mlp[0].in_features == s2.config.text.hidden_size + 2 + v * d  # the loaded run is untouched
    out = OccVLAPolicy.from_run_dir(run_dir).predict(np.zeros((6, 64, 64, 3), np.uint8), 5.0, 4)
    assert out.waypoints.shape == (6, 2) and np.isfinite(out.waypoints).all()
    # the cache holds one teacher-forced and one generated row per training sample
    from occvla.training.vla import build_model_and_processor, cache_planner_inputs

    conf = compose_config([*FAST, "train=stage3_planning", f"data.root={data_root}", "train.planner_meta=both",
                           f"model.init_from={run_dir}", "device=cpu"])
    train_ds, _, _ = build_datasets(conf.data, image_size=model.config.vision.image_size,
                                    occ_grid=tuple(model.config.occ.grid))
    m, proc = build_model_and_processor(conf, train_ds, tmp_path / "c")
    cache = cache_planner_inputs(m, proc, train_ds, conf)
    assert len(cache["meta"]) == 2 * len(train_ds) and cache["visual"].shape[1:] == (v * 4, m.config.text.hidden_size)
    with pytest.raises(ValueError, match="planner_meta must be one of"):
        _run("train=stage3_planning", "train.steps=1", f"data.root={data_root}",
             f"model.init_from={stage_dirs['s2']}", "train.planner_meta=sampled", f"run_dir={tmp_path / 'bad'}")


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


def test_stages_1_to_3_with_qa_plan_from_the_trained_position(data_root: Path, tmp_path: Path) -> None:
    """After stage 1 with QA the model continues a meta-action with a question; inference must still plan from the
    last meta-action token (the position stage 3 trained the head on), not from wherever free decoding stops."""
    from occvla.meta_actions import META_ACTIONS
    from occvla.model import prefix_lm_mask
    from occvla.policy import OccVLAPolicy
    from occvla.processor import OccVLAProcessor
    from occvla.run_dir import load_run_dir
    from occvla.training.data import build_datasets

    d = {k: tmp_path / k for k in ("vq", "s1", "s2", "s3")}
    data = [f"data.root={data_root}"]
    _run("train=stage0_vqvae", "train.steps=2", *data, f"run_dir={d['vq']}")
    _run("train=stage1_vqa", "train.steps=40", "train.lr=3e-3", "train.include_qa=true", *data,
         f"model.vqvae_path={d['vq']}", f"run_dir={d['s1']}")
    _run("train=stage2_joint", "train.steps=1", *data, f"model.init_from={d['s1']}", f"run_dir={d['s2']}")
    _run("train=stage3_planning", "train.steps=2", *data, f"model.init_from={d['s2']}", f"run_dir={d['s3']}")

    policy = OccVLAPolicy.from_run_dir(d["s3"])
    model, _, _ = load_run_dir(d["s3"])
    qa_proc = OccVLAProcessor.from_pretrained(d["s3"] / "tokenizer")
    qa_proc.include_qa = True
    ds, _, _ = build_datasets(compose_config([*FAST, *data]).data, image_size=64, occ_grid=(16, 16, 8))
    sample = ds[0]
    assert len(sample["qa"]) >= 2  # a question besides the one repeating the meta-action
    out = policy.predict(sample["images"], sample["speed"], sample["command"])
    assert out.meta_action in META_ACTIONS
    # teacher forcing with the predicted meta-action and the QA text of training
    batch = qa_proc([{**sample, "meta_action": out.meta_action}], train=True)
    end = int(batch["meta_end_index"][0])
    with torch.no_grad():
        res = model(batch, compute_occupancy=False)
    # stage 1 taught the LM to continue with a question: free decoding would not stop on the meta-action
    assert int(batch["input_ids"][0, end + 1]) != qa_proc.eos_id
    assert int(res.logits[0, end - res.logits_start].argmax()) != qa_proc.eos_id
    prompt = policy.processor([sample], train=False)
    gen = policy.model.generate(prompt, policy.processor.meta_action_ids)
    assert policy.processor.decode(gen.token_ids[0]) == out.meta_action
    # the planner's input is the hidden state at meta_end_index, and so its waypoints are training's
    hidden = model.vlm.model.language_model(
        inputs_embeds=model.embed(batch["input_ids"], batch["pixel_values"]),
        attention_mask=prefix_lm_mask(batch["attention_mask"], batch["token_type_ids"], torch.float32),
        position_ids=batch["position_ids"],
    ).last_hidden_state
    torch.testing.assert_close(gen.meta_hidden[0], hidden[0, end], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.as_tensor(out.waypoints), res.waypoints[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("stage", ["stage1_vqa", "stage2_joint"])
def test_stages_1_2_refuse_an_untrained_vqvae(stage: str, data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model.vqvae_path") as err:
        _run(f"train={stage}", "train.steps=1", f"data.root={data_root}", f"run_dir={tmp_path / 'r'}")
    assert "\n" not in str(err.value)
    # a run without the occupancy branch has no decoder to worry about
    _run(f"train={stage}", "train.steps=1", "train.eval_max_samples=0", f"data.root={data_root}",
         "+model.overrides={occ: {enabled: false}}", f"run_dir={tmp_path / 'no_occ'}")


def test_stage3_on_the_frozen_vlm_cache_trains_the_same_head(stage_dirs: dict[str, Path], data_root: Path,
                                                             tmp_path: Path) -> None:
    from occvla.run_dir import load_run_dir

    common = ["train=stage3_planning", "train.steps=3", f"data.root={data_root}",
              f"model.init_from={stage_dirs['s2']}", "train.eval_max_samples=0"]
    _run(*common, f"run_dir={tmp_path / 'cached'}")  # train.cache_frozen=true is the default
    _run(*common, "train.cache_frozen=false", f"run_dir={tmp_path / 'plain'}")
    a, _, _ = load_run_dir(tmp_path / "cached")
    b, _, _ = load_run_dir(tmp_path / "plain")
    s2, _, _ = load_run_dir(stage_dirs["s2"])
    for (name, pa), pb in zip(a.planner.state_dict().items(), b.planner.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, atol=1e-4, rtol=1e-4, msg=name)  # Adam: see test_distributed.py
    assert any(not torch.equal(p, q) for p, q in zip(a.planner.parameters(), s2.planner.parameters(), strict=True))
    with (tmp_path / "cached" / "metrics.csv").open() as f:
        cached = [float(r["value"]) for r in csv.DictReader(f) if r["name"] == "plan_loss"]
    with (tmp_path / "plain" / "metrics.csv").open() as f:
        plain = [float(r["value"]) for r in csv.DictReader(f) if r["name"] == "plan_loss"]
    np.testing.assert_allclose(cached, plain, rtol=1e-4)


def test_occvla_eval_scores_a_run_dir_beside_constant_velocity(stage_dirs: dict[str, Path], data_root: Path,
                                                               tmp_path: Path, capsys) -> None:
    """`occvla-eval RUN_DIR --data DIR`: the markdown table of both rows and a JSON whose constant-velocity L2 is
    the speed-times-time extrapolation scored on the same samples; a missing dataset is one line."""
    import json

    from occvla.data import NuScenesOccDataset
    from occvla.evaluate import constant_velocity, main
    from occvla.metrics.planning import l2_errors

    out = tmp_path / "eval.json"
    assert main([str(stage_dirs["s2"]), "--data", str(data_root), "--max-samples", "5", "--batch-size", "2",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| L2 3 s (UniAD) m |" in text and "constant velocity" in text and "meta-action accuracy" in text
    res = json.loads(out.read_text())
    ds = NuScenesOccDataset(data_root, load_images=False, generate_qa=False)
    assert res["samples"] == len(ds) == 2 and 0.0 <= res["model"]["meta_exact"] <= 1.0
    assert 0.0 <= res["model"]["vqa_accuracy"] <= 1.0  # scored even for a run that trained without QA text
    speeds = np.array([ds[i]["speed"] for i in range(len(ds))])  # more asked for than there are: all of them
    gt = np.stack([ds[i]["trajectory"] for i in range(len(ds))])
    want = l2_errors(constant_velocity(speeds), gt)
    assert res["constant_velocity"]["l2_uniad_3s"] == pytest.approx(want["l2_uniad_3s"])
    assert res["constant_velocity"]["l2_stp3_avg"] == pytest.approx(want["l2_stp3_avg"])
    np.testing.assert_allclose(constant_velocity(np.array([2.0]))[0, :, 0], [1, 2, 3, 4, 5, 6])
    assert main([str(stage_dirs["s2"]), "--data", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_stage3_with_the_route_then_predicts_from_it(stage_dirs: dict[str, Path], data_root: Path,
                                                     tmp_path: Path) -> None:
    """The path a user takes for a route-reading head: stage 3 with planner.route_input on data that carry route
    points, then the policy plans from them; where they are left out it says so in one line."""
    from occvla.policy import OccVLAPolicy
    from occvla.run_dir import load_run_dir

    run_dir = tmp_path / "route"
    _run("train=stage3_planning", "train.steps=2", f"data.root={data_root}", f"model.init_from={stage_dirs['s2']}",
         "+model.overrides.planner.route_input=true", "+model.overrides.planner.kinematic_prior=true",
         f"run_dir={run_dir}")
    model, _, _ = load_run_dir(run_dir)
    assert model.config.planner.route_input
    policy = OccVLAPolicy.from_run_dir(run_dir)
    images = np.zeros((6, 64, 64, 3), np.uint8)
    straight = np.array([[-5.0, 0.0], [15.0, 0.0], [35.0, 0.0]], np.float32)
    left = np.array([[-5.0, 0.0], [10.0, 5.0], [15.0, 25.0]], np.float32)
    a = policy.predict(images, 5.0, 4, route=straight).waypoints
    b = policy.predict(images, 5.0, 4, route=left).waypoints
    assert a.shape == (6, 2) and np.isfinite(a).all() and not np.allclose(a, b)  # the plan reads the route
    with pytest.raises(ValueError, match="route_input") as err:
        policy.predict(images, 5.0, 4)
    assert "\n" not in str(err.value)
    # data without route points (real nuScenes, older collections): stage 3 says so before training
    from occvla.training.data import build_datasets
    from occvla.training.vla import build_model_and_processor, cache_planner_inputs

    conf = compose_config([*FAST, "train=stage3_planning", f"data.root={data_root}", f"model.init_from={run_dir}",
                           "device=cpu"])
    train_ds, _, _ = build_datasets(conf.data, image_size=model.config.vision.image_size,
                                    occ_grid=tuple(model.config.occ.grid))

    class NoRoute:
        def __len__(self) -> int:
            return len(train_ds)

        def __getitem__(self, i: int) -> dict:
            return {k: v for k, v in train_ds[i].items() if k != "route"}

    m, proc = build_model_and_processor(conf, train_ds, tmp_path / "c")
    with pytest.raises(ValueError, match="needs route points") as err:
        cache_planner_inputs(m, proc, NoRoute(), conf)
    assert "\n" not in str(err.value)
