"""OccVLA: occupancy-supervised vision-language-action model (pure torch/transformers; imports no simulator).

Public entry points are imported lazily so that ``import occvla.vqvae`` (stage 0) does not pay for transformers.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "build_model": "occvla.model",
    "OccVLAModel": "occvla.model",
    "OccVLAOutput": "occvla.model",
    "OccVLAConfig": "occvla.config",
    "preset_config": "occvla.config",
    "OccVLAProcessor": "occvla.processor",
    "build_tokenizer": "occvla.tokenizer",
    "tokenizer_for_config": "occvla.tokenizer",
    "wrap_with_peft": "occvla.peft_utils",
    "merge_peft": "occvla.peft_utils",
    "save_run_dir": "occvla.run_dir",
    "load_run_dir": "occvla.run_dir",
    "OccVLAPolicy": "occvla.policy",
    "PolicyOutput": "occvla.policy",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'occvla' has no attribute {name!r}")
