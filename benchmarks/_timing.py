"""Timers shared by the closed-loop benchmarks (imported as a sibling: the scripts run as `python benchmarks/x.py`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[..., Any], ms: list[float], ends: list[float] | None = None) -> Callable[..., Any]:
    """``fn`` wrapped to append each call's milliseconds to ``ms`` (and its end time, perf_counter s, to ``ends``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        t1 = time.perf_counter()
        ms.append((t1 - t0) * 1e3)
        if ends is not None:
            ends.append(t1)
        return out

    return wrapper


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99); the value itself for one value, 0 for none."""
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)
