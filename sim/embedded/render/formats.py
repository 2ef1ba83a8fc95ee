"""CARLA's camera encodings: depth in BGRA (24-bit over 1000 m), semantic tag in the red channel."""

from __future__ import annotations

import numpy as np

DEPTH_RANGE = 1000.0  # metres: CARLA's depth camera saturates here (and the renderer's far plane)
_MAX24 = 256.0**3 - 1.0


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) planar depth in metres -> (H, W, 4) uint8 BGRA, normalized = (R + 256 G + 65536 B) / (256^3 - 1)."""
    v = np.round(np.clip(depth / DEPTH_RANGE, 0.0, 1.0) * _MAX24).astype(np.uint32)  # (H, W)
    out = np.empty(depth.shape + (4,), np.uint8)
    out[..., 0] = (v >> 16) & 255  # B
    out[..., 1] = (v >> 8) & 255  # G
    out[..., 2] = v & 255  # R
    out[..., 3] = 255
    return out


def decode_depth(bgra: np.ndarray) -> np.ndarray:
    """CARLA's formula: (H, W, 4) uint8 BGRA -> (H, W) float32 metres."""
    b, g, r = (bgra[..., i].astype(np.float64) for i in (0, 1, 2))
    return ((r + g * 256.0 + b * 65536.0) / _MAX24 * DEPTH_RANGE).astype(np.float32)


def encode_semantic(semantic: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class ids -> (H, W, 4) BGRA with the id in red (array index 2), as CARLA's semantic camera."""
    out = np.zeros(semantic.shape + (4,), np.uint8)
    out[..., 2] = semantic
    out[..., 3] = 255
    return out
