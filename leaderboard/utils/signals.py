"""SIGTERM as Ctrl-C, so a terminated evaluation or collection stops its Ray workers and keeps what finished."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_handler: Any = None  # the handler of the innermost active block


def _raise(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM (`kill`, a batch system's time limit) raises KeyboardInterrupt in the main thread.

    Python's default SIGTERM ends the process without unwinding: Ray's route workers outlived their driver and
    went on driving. Outside the main thread (where signals cannot be set) the block changes nothing."""
    global _handler
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old, outer = signal.signal(signal.SIGTERM, _raise), _handler
    _handler = _raise
    try:
        yield
    finally:
        _handler = outer
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)  # None: a handler set outside Python


def reclaim_sigterm() -> None:
    """Call after `ray.init()`, which installs its own (C++) SIGTERM handler: inside a `sigterm_as_interrupt`
    block SIGTERM raises KeyboardInterrupt again."""
    if _handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)
