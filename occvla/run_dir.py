"""Run directory: the unit of reuse. Everything needed to rebuild a trained OccVLA, and nothing else.

Layout:
  config.yaml         the caller's resolved config (e.g. hydra's), with ``model`` replaced by the full resolved
                      OccVLAConfig (the caller's own ``model`` section moves to ``model_args``) and ``peft``
                      holding the LoRA settings when the weights carry adapters
  model.safetensors   the OccVLAModel state dict (frozen VQ-VAE included; LoRA unmerged if present)
  tokenizer/          OccVLAProcessor.save_pretrained (tokenizer files + processor_config.json)
  README.md           model card: sizes, data, metrics
Loading rebuilds the model from ``model`` (never re-reading ``pretrained_path``: the weights are all here), re-injects
LoRA when ``peft`` is set, loads the weights strictly, and merges the adapters by default (inference cost = none).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from occvla.config import LoraConfig, OccVLAConfig
from occvla.model import OccVLAModel
from occvla.peft_utils import merge_peft, trainable_parameter_count, wrap_with_peft
from occvla.processor import PROCESSOR_FILE, OccVLAProcessor

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
CARD_FILE = "README.md"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _model_card(model: OccVLAModel, cfg_dict: dict, metrics: dict | None, card_extra: str) -> str:
    c = model.config
    train, total = trainable_parameter_count(model)
    lines = [
        f"# OccVLA run ({c.preset} preset)",
        "",
        "OccVLA: six surround cameras + ego speed + navigation command -> meta-action text + 6 waypoints (3 s, 2 Hz,",
        "ego frame x forward / y left, metres); an occupancy branch (training only) supervises the visual tokens.",
        "",
        "| part | value |",
        "|---|---|",
        f"| parameters | {total:,} ({train:,} trainable at save time) |",
        (
            f"| vision | SigLIP {c.vision.num_layers}x{c.vision.hidden_size}, {c.vision.image_size} px, "
            f"patch {c.vision.patch_size}, pool {c.vision.token_pool} -> {c.vision.tokens_per_camera} tokens/camera |"
        ),
        f"| language model | {c.text.arch} {c.text.num_layers}x{c.text.hidden_size}, vocab {c.text.vocab_size} |",
        f"| occupancy | {'grid ' + 'x'.join(map(str, c.occ.grid)) if c.occ.enabled else 'disabled'} |",
        f"| LoRA | {f'r={model.lora.r} (unmerged in the weights)' if model.lora else 'none / merged'} |",
        "",
    ]
    data = cfg_dict.get("data")
    if data is not None:
        lines += ["## Data", "", "```yaml", yaml.safe_dump(_plain(data), sort_keys=False).rstrip(), "```", ""]
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [
            f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()
        ]
        lines.append("")
    lines += [
        "## Use",
        "",
        "```python",
        "from occvla import OccVLAPolicy",
        "policy = OccVLAPolicy.from_run_dir('<this directory>')",
        "out = policy.predict(images, speed, command)  # images (6, H, W, 3) uint8 RGB",
        *(
            [
                "# this head reads the route: the plan points (3, 2) in the ego frame (agent.occvla_agent.RouteCommands)",
                "out = policy.predict(images, speed, command, route=route_points)",
            ]
            if model.config.planner.route_input
            else []
        ),
        "```",
        "",
    ]
    if card_extra:
        lines += [card_extra.rstrip(), ""]
    return "\n".join(lines)


def _plain(x: Any) -> Any:
    """OmegaConf/dataclass/tuple-free copy for YAML."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(x, (DictConfig, ListConfig)):
            x = OmegaConf.to_container(x, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        x = dataclasses.asdict(x)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def save_run_dir(
    path: str | Path,
    model: OccVLAModel,
    processor: OccVLAProcessor,
    cfg_dict: dict | None = None,
    metrics: dict | None = None,
    card_extra: str = "",
) -> Path:
    """Write config.yaml, model.safetensors, tokenizer/ and README.md into ``path`` (created if needed)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = _plain(cfg_dict or {})
    if "model" in cfg and cfg["model"] != model.config.to_dict():
        cfg["model_args"] = cfg["model"]  # the caller's model section (e.g. hydra's preset + overrides), kept
    cfg["model"] = model.config.to_dict()
    cfg["peft"] = dataclasses.asdict(model.lora) if model.lora is not None else None
    if metrics:
        cfg["metrics"] = _plain(metrics)
    processor.save_pretrained(path / TOKENIZER_DIR)
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_model(model, str(tmp), metadata={"format": "pt", "occvla_preset": model.config.preset})
    os.replace(tmp, path / WEIGHTS_FILE)
    _atomic_write_text(path / CONFIG_FILE, yaml.safe_dump(_plain(cfg), sort_keys=False))
    _atomic_write_text(path / CARD_FILE, _model_card(model, cfg, metrics, card_extra))
    return path


def load_run_dir(path: str | Path, merge_lora: bool = True) -> tuple[OccVLAModel, OccVLAProcessor, dict]:
    """Rebuild (model, processor, cfg_dict) from a run directory; one-line errors for missing/corrupt parts."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    for rel in (CONFIG_FILE, WEIGHTS_FILE, f"{TOKENIZER_DIR}/{PROCESSOR_FILE}"):
        if not (path / rel).is_file():
            raise FileNotFoundError(f"run directory {path} is missing {rel}")
    try:
        cfg = yaml.safe_load((path / CONFIG_FILE).read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"corrupt {CONFIG_FILE} in {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        msg = f"{path / CONFIG_FILE} has no 'model' mapping; was it written by save_run_dir?"
        raise ValueError(msg)  # noqa: TRY004 - a bad file, not a bad argument type
    try:
        model_cfg = OccVLAConfig.from_dict(cfg["model"])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path / CONFIG_FILE}: {e}") from None
    model_cfg.pretrained_path = None  # the weights are all in model.safetensors
    model = OccVLAModel(model_cfg)
    if cfg.get("peft"):
        peft_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["peft"].items()}
        wrap_with_peft(model, LoraConfig(**peft_cfg))
    try:
        load_model(model, str(path / WEIGHTS_FILE), strict=True)
    except SafetensorError as e:
        raise ValueError(f"corrupt {WEIGHTS_FILE} in {path}: {e}") from None
    except RuntimeError as e:  # shape/key mismatch against config.yaml
        first = str(e).strip().splitlines()
        raise ValueError(
            f"{path / WEIGHTS_FILE} does not match its config.yaml: {' '.join(first[:2])[:300]}"
        ) from None
    if merge_lora:
        merge_peft(model)
    processor = OccVLAProcessor.from_pretrained(path / TOKENIZER_DIR)
    if processor.image_token_id != model.image_token_id:
        raise ValueError(
            f"tokenizer <image> id {processor.image_token_id} != model image_token_id {model.image_token_id} in {path}"
        )
    model.eval()
    return model, processor, cfg
