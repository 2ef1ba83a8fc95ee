"""PEFT for OccVLA: LoRA (peft) on the LM and the vision tower, through one entry point.

Why in place (``peft.inject_adapter_in_model``) rather than ``get_peft_model``: the OccVLA module tree and its
attribute paths (``model.vlm.model.language_model``...) stay the same with or without adapters, so training,
inference and the run directory need no PeftModel special cases. After wrapping, only the LoRA matrices, the
multimodal projector, the occupancy branch and the planning head are trainable; the VQ-VAE stays frozen.
``merge_peft`` folds the adapters into the base weights for export (plain nn.Linear again, no LoRA overhead).
"""

from __future__ import annotations

import peft
from peft.tuners.lora import LoraLayer
from torch import nn

from occvla.config import LoraConfig
from occvla.model import OccVLAModel


def lora_target_regex(cfg: LoraConfig) -> str:
    """Full-match regex over module names inside ``model.vlm`` selecting the LoRA targets."""
    lm = "|".join(cfg.lm_modules)
    vis = "|".join(cfg.vision_modules)
    parts = []
    if lm:
        parts.append(rf"model\.language_model\..*\.({lm})")
    if vis:
        parts.append(rf"model\.vision_tower\..*\.({vis})")
    if not parts:
        raise ValueError("LoraConfig selects no modules: lm_modules and vision_modules are both empty")
    return "|".join(parts)


def wrap_with_peft(model: OccVLAModel, cfg: LoraConfig | None = None) -> OccVLAModel:
    """Inject LoRA adapters into ``model.vlm`` (in place) and set which parameters train; returns ``model``.

    Args:
        cfg: LoRA settings; defaults to ``model.config.lora``.
    """
    if model.lora is not None:
        raise ValueError("wrap_with_peft: this model already has LoRA adapters")
    cfg = cfg or model.config.lora
    lcfg = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=lora_target_regex(cfg),
        bias="none",
    )
    peft.inject_adapter_in_model(lcfg, model.vlm)
    model.requires_grad_(False)
    for name, p in model.vlm.named_parameters():
        if "lora_" in name:
            p.requires_grad_(True)
    model.vlm.model.multi_modal_projector.requires_grad_(True)
    if model.occ_branch is not None:
        model.occ_branch.requires_grad_(True)
    model.planner.requires_grad_(True)
    model.lora = cfg
    return model


def merge_peft(model: OccVLAModel) -> OccVLAModel:
    """Merge LoRA adapters into the base weights and remove the adapter modules (in place); returns ``model``."""
    if model.lora is None:
        return model
    for parent in list(model.vlm.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                child.merge()
                setattr(parent, child_name, child.get_base_layer())
    model.lora = None
    return model


def trainable_parameter_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return train, total
