"""OccVLAModel: preset shapes, the skipped branch is free and invisible, gradients, LoRA, overfitting one sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft.tuners.lora import LoraLayer

from occvla.config import OccVLAConfig, preset_config
from occvla.metrics.occupancy import occupancy_miou
from occvla.model import OccVLAModel, build_model
from occvla.peft_utils import merge_peft, trainable_parameter_count, wrap_with_peft
from occvla.processor import OccVLAProcessor
from occvla.tokenizer import build_tokenizer
from occvla.vqvae import OccVQVAE, VQVAEConfig


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The CI machine has 2 cores shared by many processes; OpenMP with 2 threads under contention is ~4x slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _structured_occupancy(grid) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = grid
    occ = np.full(grid, 17, np.uint8)  # free
    occ[:, :, 0] = 11  # drivable surface
    occ[:, : y // 4, 0] = 13  # sidewalk
    occ[x // 2 : x // 2 + 3, y // 2 : y // 2 + 3, 1:3] = 4  # a car
    occ[2:4, y - 4 : y - 2, 1:4] = 7  # a pedestrian-ish column
    mask = np.ones(grid, bool)
    mask[:, :, z - 2 :] = False  # not seen by the cameras
    return occ, mask


def _sample(cfg: OccVLAConfig, seed: int = 0, **kw) -> dict:
    rng = np.random.default_rng(seed)
    s = cfg.vision.image_size
    occ, mask = _structured_occupancy(tuple(cfg.occ.grid))
    sample = {
        "images": rng.integers(0, 256, (cfg.num_cameras, s, s, 3), dtype=np.uint8),
        "speed": 6.0,
        "command": 1,
        "meta_action": "turn left, decelerate",
        "trajectory": np.cumsum(np.tile([[2.5, 0.3]], (6, 1)), 0).astype(np.float32),
        "occupancy": occ,
        "mask_camera": mask,
    }
    sample.update(kw)
    return sample


@pytest.mark.parametrize("preset, lo, hi", [("tiny", 4e6, 7e6), ("small", 20e6, 30e6)])
def test_preset_shapes(preset, lo, hi, tok):
    torch.manual_seed(0)
    model = build_model(preset)
    cfg = model.config
    proc = OccVLAProcessor.for_config(cfg, tok)
    batch = proc(
        [_sample(cfg, 0), _sample(cfg, 1, meta_action="keep lane, keep speed", command=4, speed=12.5)]
    )
    out = model(batch)
    _, t = batch["input_ids"].shape
    assert lo < trainable_parameter_count(model)[1] < hi
    assert out.logits.shape == (2, t - out.logits_start, cfg.text.vocab_size)
    assert out.occ_logits.shape == (2, 18, *cfg.occ.grid)
    assert out.waypoints.shape == (2, 6, 2)
    for loss in (out.loss, out.text_loss, out.occ_loss, out.plan_loss):
        assert loss is not None and torch.isfinite(loss)
    assert cfg.image_tokens == 6 * cfg.vision.tokens_per_camera == int((batch["input_ids"][0] == 4).sum())


def test_paper_preset_on_meta_device():
    with torch.device("meta"):
        model = build_model("paper")
    total = sum(p.numel() for p in model.parameters())
    vlm = sum(p.numel() for p in model.vlm.parameters())
    assert 2.95e9 < vlm < 3.1e9  # PaliGemma2-3B-224
    assert 2.95e9 < total < 3.15e9
    cfg = model.config
    assert cfg.vision.tokens_per_camera == 256 and cfg.image_tokens == 1536
    assert model.vlm.config.text_config.model_type == "gemma2"
    assert model.vlm.config.text_config.vocab_size == 257216
    assert model.vqvae.latent_shape == (128, 50, 50)  # OccWorld-style 50x50xC for the 200x200x16 grid
    assert model.occ_branch.queries.shape == (2500, cfg.occ.hidden_size)
    assert next(model.parameters()).device.type == "meta"


def test_skipped_branch_is_bit_identical_to_a_model_without_it(tok):
    torch.manual_seed(0)
    full = build_model("tiny").eval()
    bare = build_model("tiny", occ={"enabled": False}).eval()
    assert bare.occ_branch is None and bare.vqvae is None
    bare.load_state_dict({k: v for k, v in full.state_dict().items() if k in bare.state_dict()}, strict=True)
    proc = OccVLAProcessor.for_config(full.config, tok)
    batch = proc([_sample(full.config, 0), _sample(full.config, 1, command=4, speed=13.0)])
    with torch.no_grad():
        a, b, c = full(batch, compute_occupancy=False), bare(batch), full(batch, compute_occupancy=True)
    assert a.occ_logits is None and c.occ_logits is not None
    for x in (a, c):  # with or without the branch running, the other outputs do not change by a bit
        assert torch.equal(x.logits, b.logits) and torch.equal(x.waypoints, b.waypoints)
        assert torch.equal(x.text_loss, b.text_loss) and torch.equal(x.plan_loss, b.plan_loss)
    prompt = proc([_sample(full.config, 0)], train=False)
    ga = full.generate(prompt, proc.meta_action_ids)
    gb = bare.generate(prompt, proc.meta_action_ids)
    assert ga.token_ids == gb.token_ids and torch.equal(ga.waypoints, gb.waypoints) and ga.occ_logits is None


def test_occupancy_loss_alone_reaches_vision_tower_and_lora(tok):
    torch.manual_seed(0)
    model = wrap_with_peft(build_model("tiny", occ={"source_layer": 2}))  # layer 2 of 3
    proc = OccVLAProcessor.for_config(model.config, tok)
    out = model(proc([_sample(model.config)]))
    model.zero_grad()
    out.occ_loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    def nonzero(pattern: str) -> bool:
        return any(g is not None and bool(g.abs().sum() > 0) for n, g in grads.items() if pattern in n)

    assert nonzero("vision_tower") and nonzero("vision_tower.encoder.layers.0.self_attn.q_proj.lora_B")
    assert nonzero("language_model.layers.0.") and nonzero("language_model.layers.1.mlp.down_proj.lora_B")
    assert nonzero("multi_modal_projector") and nonzero("occ_branch")
    # above the source layer the occupancy loss cannot reach the LM
    assert not nonzero("language_model.layers.2.")
    assert not nonzero("planner")
    assert all(p.grad is None for p in model.vqvae.parameters())  # frozen decoder
    frozen = [p for n, p in model.vlm.named_parameters() if "lora_" not in n and "projector" not in n]
    assert all(not p.requires_grad and p.grad is None for p in frozen)


def test_occupancy_gradients_reach_vision_weights_without_lora(tok):
    torch.manual_seed(0)
    model = build_model("tiny")
    proc = OccVLAProcessor.for_config(model.config, tok)
    model(proc([_sample(model.config)])).occ_loss.backward()
    w = dict(model.vision_tower.named_parameters())["embeddings.patch_embedding.weight"]
    assert w.grad is not None and bool(w.grad.abs().sum() > 0)


def test_lora_merge_keeps_outputs(tok):
    torch.manual_seed(0)
    model = wrap_with_peft(build_model("tiny")).eval()
    train, total = trainable_parameter_count(model)
    assert 0.05 < train / total < 0.5
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # make the adapters matter
    proc = OccVLAProcessor.for_config(model.config, tok)
    batch = proc([_sample(model.config)])
    with torch.no_grad():
        before = model(batch)
        merge_peft(model)
        after = model(batch)
    assert not any(isinstance(m, LoraLayer) for m in model.modules()) and model.lora is None
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in build_model("tiny").parameters()
    )
    torch.testing.assert_close(after.logits, before.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after.occ_logits, before.occ_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after.waypoints, before.waypoints, atol=1e-4, rtol=1e-4)


def test_left_padded_batch_generation_matches_single_samples(tok):
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    # prompts differ in length only through the speed text (each command is one token)
    cfg = model.config
    proc = OccVLAProcessor(tok, cfg.vision.image_size, cfg.vision.tokens_per_camera, speed_in_prompt=True)
    samples = [
        _sample(model.config, 0, command=4, speed=3.0),
        _sample(model.config, 1, command=5, speed=14.25),
    ]
    both = model.generate(proc(samples, train=False), proc.meta_action_ids)
    assert proc(samples, train=False)["attention_mask"][0, 0] == 0  # the shorter prompt really is padded
    for i, s in enumerate(samples):
        one = model.generate(proc([s], train=False), proc.meta_action_ids)
        assert one.token_ids[0] == both.token_ids[i]
        torch.testing.assert_close(one.waypoints[0], both.waypoints[i], atol=1e-4, rtol=1e-4)


def test_tiny_model_overfits_one_sample(tok):
    """Stage 0 (VQ-VAE on the sample), then joint text + occupancy + planning training, then greedy inference."""
    torch.manual_seed(0)
    model = build_model("tiny")
    cfg = model.config
    proc = OccVLAProcessor.for_config(cfg, tok)
    sample = _sample(cfg)
    batch = proc([sample])

    vq = OccVQVAE(model.vqvae.cfg).train()
    vq_opt = torch.optim.Adam(vq.parameters(), lr=3e-3)
    for _ in range(60):
        loss = vq(batch["occupancy"])["loss"]
        vq_opt.zero_grad()
        loss.backward()
        vq_opt.step()
    model.set_vqvae(vq)

    steps, lr = 100, 2e-3
    planner = list(model.planner.parameters())
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("planner.")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": planner}], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, 3 * lr], total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(steps):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        sched.step()

    model.eval()
    with torch.no_grad():
        out = model(batch)
        gen = model.generate(proc([sample], train=False), proc.meta_action_ids, return_occupancy=True)
    miou = occupancy_miou(
        gen.occ_logits.argmax(1).numpy(), sample["occupancy"][None], sample["mask_camera"][None]
    )
    assert miou["miou"] > 0.9, miou
    assert proc.decode(gen.token_ids[0]) == "turn left, decelerate"
    l2 = (gen.waypoints[0] - batch["trajectory"][0]).norm(dim=-1).mean()
    assert l2 < 0.1, l2
    # inference reads the same hidden state as teacher forcing: same waypoints and occupancy
    torch.testing.assert_close(gen.waypoints, out.waypoints, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gen.occ_logits, out.occ_logits, atol=1e-3, rtol=1e-3)


def test_pretrained_path_loads_a_local_checkpoint(tmp_path):
    torch.manual_seed(0)
    src = build_model("tiny")
    src.vlm.save_pretrained(tmp_path / "ckpt")
    loaded = build_model("tiny", pretrained_path=str(tmp_path / "ckpt"))
    for (n, a), (_, b) in zip(src.vlm.state_dict().items(), loaded.vlm.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    with pytest.raises(FileNotFoundError, match="local PaliGemma checkpoint directory"):
        build_model("tiny", pretrained_path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="config wants"):
        build_model("tiny", pretrained_path=str(tmp_path / "ckpt"), text={"hidden_size": 128, "head_dim": 32})


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: build_model("huge"), ValueError, "unknown OccVLA preset 'huge'"),
        (
            lambda: build_model("tiny", text={"num_layer": 2}),
            ValueError,
            "unknown config key 'text.num_layer'",
        ),
        (lambda: build_model("tiny", bogus=1), ValueError, "unknown config key 'bogus'"),
        (lambda: OccVLAConfig.from_dict({"preset": "tiny", "occ.gird": [8, 8, 8]}), ValueError, "'occ.gird'"),
        (lambda: build_model("tiny", vision={"token_pool": 3}), ValueError, "token_pool 3 does not divide"),
        (lambda: build_model("tiny", text={"arch": "llama"}), ValueError, "text.arch must be"),
    ],
)
def test_bad_config_errors(call, exc, message):
    with pytest.raises(exc, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_overrides_and_dict_round_trip():
    cfg = OccVLAConfig.from_dict({"preset": "small", "text.num_layers": 2, "occ": {"grid": [32, 32, 16]}})
    assert cfg.text.num_layers == 2 and cfg.occ.grid == (32, 32, 16) and cfg.vision.image_size == 112
    assert OccVLAConfig.from_dict(cfg.to_dict()) == cfg
    assert preset_config("tiny").text.arch == "gemma" and preset_config("paper").text.arch == "gemma2"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.update(pixel_values=b["pixel_values"][:5]), r"pixel_values must be \(B\*6, 3, H, W\)"),
        (lambda b: b.update(pixel_values=torch.zeros(6, 3, 32, 32)), "images must be 3x64x64"),
        (lambda b: b["pixel_values"].__setitem__((0, 0, 0, 0), float("nan")), "1 NaN/inf values"),
        (
            lambda b: b.update(input_ids=b["input_ids"].where(b["input_ids"] != 4, 5)),
            "needs 96 <image> tokens",
        ),
        (lambda b: b.pop("ego_velocity"), "batch lacks 'ego_velocity'"),
    ],
)
def test_bad_batches_give_one_line_errors(change, message, tok):
    model = build_model("tiny")
    batch = OccVLAProcessor.for_config(model.config, tok)([_sample(model.config)])
    change(batch)
    with pytest.raises(ValueError, match=message) as err:
        model(batch)
    assert "\n" not in str(err.value)


def test_vqvae_must_match_the_grid():
    model = build_model("tiny")
    with pytest.raises(ValueError, match="does not match the model's grid"):
        model.set_vqvae(OccVQVAE(VQVAEConfig(grid=(32, 32, 8), latent_dim=32, downsample=2, hidden=(32, 64))))
    assert isinstance(model, OccVLAModel)


def test_kinematic_prior_rolls_the_ego_velocity_out_under_the_mlp_offsets():
    """With the prior a head whose MLP says nothing (zero output) plans the constant-velocity rollout: the
    trajectory's scale is the ego's speed by construction; without it the same head plans to stand."""
    from occvla.config import PlannerConfig
    from occvla.planning import PlanningHead

    head = PlanningHead(PlannerConfig(kinematic_prior=True), lm_hidden=32, num_cameras=6, num_waypoints=6)
    torch.nn.init.zeros_(head.mlp[-1].weight)
    torch.nn.init.zeros_(head.mlp[-1].bias)
    vel = torch.tensor([[8.0, 0.0], [0.0, 0.0], [2.0, -1.0]])
    out = head(torch.randn(3, 32), vel, torch.randn(3, 6, 32))
    t = 0.5 * torch.arange(1, 7, dtype=torch.float32)
    torch.testing.assert_close(out, vel[:, None, :] * t[None, :, None])
    head.cfg.kinematic_prior = False
    assert torch.count_nonzero(head(torch.randn(3, 32), vel, torch.randn(3, 6, 32))) == 0


def test_route_features_give_the_offset_from_the_route_line_and_its_directions():
    """Ego 1.5 m right of a segment running straight ahead, the next segment turning left by 90 degrees; at the
    route's end (all points equal) the directions default to straight ahead rather than NaN."""
    from occvla.planning import ROUTE_FEATURES, route_features

    route = torch.tensor([[[-10.0, 1.5], [20.0, 1.5], [20.0, 40.0]],
                          [[3.0, 0.0], [3.0, 0.0], [3.0, 0.0]]])  # (2, 3, 2)
    f = route_features(route)
    assert f.shape == (2, ROUTE_FEATURES) and torch.isfinite(f).all()
    torch.testing.assert_close(f[0, :6], torch.tensor([-0.2, 0.03, 0.4, 0.03, 0.4, 0.8]))
    assert f[0, 6] == pytest.approx(-0.75)  # 1.5 m right of the line, metres / 2
    torch.testing.assert_close(f[0, 7:], torch.tensor([1.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(f[1, 7:], torch.tensor([1.0, 0.0, 1.0, 0.0]))
    far = route_features(torch.tensor([[[0.0, 0.0], [500.0, 0.0], [900.0, -30.0]]]))
    assert far[0, :6].abs().max() == 4.0  # clamped: a plan point 200 m away counts as far, not as 200 m


def test_a_route_reading_head_needs_the_route():
    from occvla.config import PlannerConfig
    from occvla.planning import PlanningHead

    head = PlanningHead(PlannerConfig(route_input=True), lm_hidden=32, num_cameras=6, num_waypoints=6)
    meta, vel, vis = torch.randn(2, 32), torch.zeros(2, 2), torch.randn(2, 6, 32)
    with pytest.raises(ValueError, match="route_input"):
        head(meta, vel, vis)
    route = torch.tensor([[[-5.0, 0.0], [15.0, 0.0], [35.0, 0.0]]] * 2)
    turned = route.clone()
    turned[1, 2] = torch.tensor([15.0, 20.0])
    out = head(meta, vel, vis, turned)
    assert not torch.allclose(out, head(meta, vel, vis, route))


def test_visual_grid_pools_each_camera_into_image_quadrants():
    """planner.visual_grid=2: the head reads, per camera, the mean of each quadrant of its token grid (row-major as
    the patches), so a feature that lives only in the left half of CAM_FRONT stays on the left; 1 is the camera mean."""
    model = build_model("tiny", planner={"visual_grid": 2})
    cfg = model.config
    v, n, d = cfg.num_cameras, cfg.vision.tokens_per_camera, cfg.text.hidden_size
    s = round(n**0.5)
    ids = torch.full((1, v * n + 3), 5)
    ids[0, : v * n] = model.image_token_id
    last = torch.zeros(1, v * n + 3, d)
    grid = torch.zeros(v, s, s, d)
    grid[0, :, : s // 2, 0] = 1.0  # camera 0: feature 0 on the left half only
    last[0, : v * n] = grid.reshape(v * n, d)
    vis = model._visual(last, ids)  # (1, V*4, D)
    assert vis.shape == (1, v * 4, d)
    torch.testing.assert_close(vis[0, :4, 0], torch.tensor([1.0, 0.0, 1.0, 0.0]))  # TL, TR, BL, BR
    assert float(vis[0, 4:].abs().sum()) == 0.0
    model.config.planner.visual_grid = 1
    torch.testing.assert_close(model._visual(last, ids)[0, 0, 0], torch.tensor(0.5))
    with pytest.raises(ValueError, match="visual_grid 3 must divide"):
        build_model("tiny", planner={"visual_grid": 3})
