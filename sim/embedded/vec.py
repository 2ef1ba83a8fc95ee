"""Small vector helpers for the hot paths of the embedded simulator."""

from __future__ import annotations

import numpy as np


def rows_times(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """v @ m for many row vectors v (N, 3) and a (3, 3) m, without BLAS.

    OpenBLAS threads a skinny (N, 3) @ (3, 3) product over both cores: measured here 0.23 s for N = 640k with
    another process on the second core, against 0.009 s on one thread; three broadcast multiply-adds take ~0.01 s
    whatever the load."""
    m = m.astype(v.dtype, copy=False)
    return v[:, 0:1] * m[0] + v[:, 1:2] * m[1] + v[:, 2:3] * m[2]
