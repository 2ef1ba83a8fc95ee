"""OccVQVAE: shapes, codebook behaviour, persistence and a short reconstruction fit."""

from __future__ import annotations

import pytest
import torch

from occvla.vqvae import OccVQVAE, VQVAEConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small convolutions: one thread is as fast and far steadier on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _scene(x: int = 16, y: int = 16, z: int = 4) -> torch.Tensor:
    """A road plane, a sidewalk strip, a car box and a pole: (X, Y, Z) long, free elsewhere."""
    sem = torch.full((x, y, z), 17, dtype=torch.long)
    sem[:, :, 0] = 11  # driveable surface
    sem[:, : y // 4, 0] = 13  # sidewalk on one side
    sem[4:8, 6:9, 1:3] = 4  # car
    sem[12, 2, :] = 15  # manmade pole
    return sem


def test_shapes_default_grid_latent() -> None:
    cfg = VQVAEConfig(grid=(32, 32, 16), hidden=(16, 32), codebook_size=32, latent_dim=16)
    m = OccVQVAE(cfg)
    assert m.latent_shape == (16, 8, 8)
    sem = torch.randint(0, 18, (2, 32, 32, 16))
    z_e = m.encode(sem)
    assert z_e.shape == (2, 16, 8, 8)
    z_q, idx, vq = m.quantize(z_e)
    assert z_q.shape == z_e.shape and idx.shape == (2, 8, 8) and vq.ndim == 0
    assert m.decode(z_q).shape == (2, 18, 32, 32, 16)
    out = m(sem)
    assert out["logits"].shape == (2, 18, 32, 32, 16)
    assert set(out) >= {"loss", "rec_loss", "vq_loss", "perplexity"}
    out["loss"].backward()
    assert m.encoder.stem.weight.grad is not None  # straight-through reaches the encoder


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="divisible"):
        VQVAEConfig(grid=(50, 50, 16), downsample=4)
    with pytest.raises(ValueError, match="power of 2"):
        VQVAEConfig(downsample=3)
    with pytest.raises(ValueError, match="unknown VQVAEConfig keys"):
        VQVAEConfig.from_dict({"gird": (8, 8, 4)})
    m = OccVQVAE(VQVAEConfig(grid=(8, 8, 4), hidden=(8,), codebook_size=8, latent_dim=8, downsample=2))
    with pytest.raises(ValueError, match="shape"):
        m.encode(torch.zeros(1, 8, 8, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        m.decode(torch.zeros(1, 8, 3, 3))


def test_ema_codebook_moves_only_in_train_mode() -> None:
    torch.manual_seed(0)
    m = OccVQVAE(VQVAEConfig(grid=(8, 8, 4), hidden=(8,), codebook_size=8, latent_dim=8, downsample=2))
    sem = torch.randint(0, 18, (2, 8, 8, 4))
    m.eval()
    before = m.quantizer.embedding.clone()
    m(sem)
    assert torch.equal(before, m.quantizer.embedding)
    m.train()
    m(sem)
    assert not torch.equal(before, m.quantizer.embedding)
    assert bool(m.quantizer.initialized)


@pytest.mark.parametrize("ema", [True, False])
def test_reconstructs_simple_grid_after_short_training(ema: bool) -> None:
    torch.manual_seed(0)
    cfg = VQVAEConfig(grid=(16, 16, 4), hidden=(32, 32), latent_dim=16, codebook_size=32, downsample=2, ema=ema)
    m = OccVQVAE(cfg)
    sem = _scene().unsqueeze(0)  # (1, 16, 16, 4)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    for _ in range(60):
        out = m(sem)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        pred = m(sem)["logits"].argmax(1)
    acc = (pred == sem).float().mean().item()
    car = (pred[sem == 4] == 4).float().mean().item()
    assert acc > 0.98, acc
    assert car > 0.9, car


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = VQVAEConfig(grid=(8, 8, 4), hidden=(8, 16), codebook_size=8, latent_dim=8, downsample=4, ema=False)
    m = OccVQVAE(cfg)
    m.train()
    sem = torch.randint(0, 18, (1, 8, 8, 4))
    m(sem)  # initialise the codebook from data
    m.eval()
    path = tmp_path / "vqvae.safetensors"
    m.save(path)
    m2 = OccVQVAE.load(path)
    assert m2.cfg == m.cfg
    m2.eval()
    with torch.no_grad():
        assert torch.equal(m(sem)["logits"], m2(sem)["logits"])
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        OccVQVAE.load(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        OccVQVAE.load(tmp_path / "missing.safetensors")
