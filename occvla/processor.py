"""OccVLAProcessor: the one place that turns samples into model tensors (training and inference alike).

Owner's decisions (documented here per the contract):
- Images: uint8 RGB (6, H, W, 3) in camera order, or float in [0, 1]; no resizing (a wrong size is an error naming
  expected vs got: resizing silently would hide a sensor-rig mismatch). Normalised SigLIP-style: (x - 0.5) / 0.5.
- Sequence: ``<image> * (6 N) <bos> "command: <text>." ["speed: <v> m/s"] "\\n"`` is the bidirectional prefix
  (token_type 0, labels -100); the suffix (token_type 1) is the meta-action, then (stages 1-2, ``include_qa``)
  each QA pair as ``"\\n<q> <a>"`` with loss only on the answers, then ``<eos>``. A QA pair whose answer is the
  meta-action itself is skipped (it would repeat the target just trained, at the cost of ~10 LM positions).
- ``meta_end_index``: position of the last meta-action token; its final-layer hidden state feeds the planner.
  Inference decodes over ``meta_action_ids`` only (``OccVLAModel.generate``), so it ends on the same position.
- Left padding (generation-friendly); ``position_ids`` count real tokens only, so padding never shifts positions.
- ``ego_velocity`` = (speed, 0) in the ego frame (x forward): the sample carries only a scalar speed.
- ``speed_in_prompt`` (``OccVLAConfig``): whether the speed is also written into the prompt. Off, the LM decides
  the meta-action from what it sees and the command; the speed reaches only the planning head, which needs it for
  the trajectory's scale. In driving logs "standing" predicts "stay standing" better than anything visible does, so a
  model that reads its own speed learns to stand still (the inertia problem, Codevilla et al., ICCV 2019).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from occvla.commands import command_text
from occvla.meta_actions import META_ACTIONS
from occvla.tokenizer import IMAGE_TOKEN, command_phrase, question_phrase

PROCESSOR_FILE = "processor_config.json"


class OccVLAProcessor:
    """Image normalisation + prompt building + tokenisation for OccVLA (see module docstring)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_size: int,
        image_tokens_per_camera: int,
        num_cameras: int = 6,
        include_qa: bool = False,
        speed_in_prompt: bool = True,  # processors saved before the option existed wrote the speed
    ) -> None:
        self.tokenizer = tokenizer
        self.speed_in_prompt = bool(speed_in_prompt)
        self.image_size = int(image_size)
        self.image_tokens_per_camera = int(image_tokens_per_camera)
        self.num_cameras = int(num_cameras)
        self.include_qa = bool(include_qa)
        for name in (IMAGE_TOKEN, tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token):
            if name is None or tokenizer.convert_tokens_to_ids(name) in (None, tokenizer.unk_token_id):
                raise ValueError(f"tokenizer lacks the special token {name!r} that PaliGemma prompts need")
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
        self.bos_id = int(tokenizer.bos_token_id)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        # token ids of every meta-action, tokenised as in training targets: the constrained-decoding vocabulary
        self.meta_action_ids = [self._encode(m) for m in META_ACTIONS]

    @classmethod
    def for_config(
        cls, cfg: Any, tokenizer: PreTrainedTokenizerBase, include_qa: bool = False
    ) -> OccVLAProcessor:
        """Processor matching an ``OccVLAConfig`` (image size, tokens per camera, cameras)."""
        return cls(
            tokenizer, cfg.vision.image_size, cfg.vision.tokens_per_camera, cfg.num_cameras, include_qa,
            speed_in_prompt=cfg.speed_in_prompt,
        )

    # ---- images ------------------------------------------------------------------------------------------------
    def images_to_tensor(self, images: Any) -> torch.Tensor:
        """(6, H, W, 3) uint8 RGB (or float in [0, 1]) -> normalised float (6, 3, H, W)."""
        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        v, s = self.num_cameras, self.image_size
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be (cameras, H, W, 3) RGB, got shape {tuple(arr.shape)}")
        if arr.shape[0] != v:
            raise ValueError(f"expected {v} camera images, got {arr.shape[0]}")
        if arr.shape[1:3] != (s, s):
            raise ValueError(f"expected images of {s}x{s} pixels (H x W), got {arr.shape[1]}x{arr.shape[2]}")
        if arr.dtype == np.uint8:
            x = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
        elif np.issubdtype(arr.dtype, np.floating):
            bad = int((~np.isfinite(arr)).sum())
            if bad:
                raise ValueError(f"images contain {bad} NaN/inf pixel values")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"float images must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]; pass uint8 RGB"
                )
            x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        else:
            raise ValueError(f"images must be uint8 RGB or float in [0, 1], got dtype {arr.dtype}")
        x = x.permute(0, 3, 1, 2)  # (6, 3, H, W)
        return (x - 0.5) / 0.5

    # ---- text --------------------------------------------------------------------------------------------------
    def prompt_text(self, speed: float, command: int) -> str:
        """The navigation prompt after the image tokens and <bos> (ends with the newline separator)."""
        if not math.isfinite(float(speed)):
            raise ValueError(f"speed must be a finite number of m/s, got {speed!r}")
        if not self.speed_in_prompt:
            return f"{command_phrase(command_text(command))}\n"
        return f"{command_phrase(command_text(command))} speed: {float(speed):.1f} m/s\n"

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _sequence(self, sample: dict, train: bool) -> dict[str, Any]:
        prefix = [self.image_token_id] * (self.num_cameras * self.image_tokens_per_camera) + [self.bos_id]
        prefix += self._encode(self.prompt_text(sample["speed"], sample["command"]))
        ids, labels = list(prefix), [-100] * len(prefix)
        meta_end = -1
        if train:
            meta = sample.get("meta_action")
            if not meta:
                raise ValueError("a training sample needs a non-empty 'meta_action' string")
            meta_ids = self._encode(meta)
            ids += meta_ids
            labels += meta_ids
            meta_end = len(ids) - 1
            qa_pairs = (sample.get("qa") or []) if self.include_qa else []
            for q, a in qa_pairs:
                if str(a) == meta:
                    continue  # the meta-action again: no new signal
                q_ids, full = self._encode(question_phrase(q)), self._encode(f"{question_phrase(q)} {a}")
                # answer ids as the tokenizer splits them in context (prefix property holds for BPE/SentencePiece)
                a_ids = full[len(q_ids) :] if full[: len(q_ids)] == q_ids else self._encode(str(a))
                ids += q_ids + a_ids
                labels += [-100] * len(q_ids) + a_ids
            ids.append(self.eos_id)
            labels.append(self.eos_id)
        return {"ids": ids, "labels": labels, "prefix_len": len(prefix), "meta_end": meta_end}

    def __call__(self, samples: list[dict], train: bool = True) -> dict[str, torch.Tensor]:
        """Collate samples (contract "Sample" dicts) into a batch dict for ``OccVLAModel.forward``.

        ``train=False`` builds the prompt only (for generation); training targets are then omitted.
        """
        if not samples:
            raise ValueError("OccVLAProcessor needs at least one sample")
        seqs = [self._sequence(s, train) for s in samples]
        t = max(len(s["ids"]) for s in seqs)
        b = len(samples)
        input_ids = torch.full((b, t), self.pad_id, dtype=torch.long)
        labels = torch.full((b, t), -100, dtype=torch.long)
        attention_mask = torch.zeros((b, t), dtype=torch.long)
        token_type_ids = torch.zeros((b, t), dtype=torch.long)
        meta_end = torch.zeros(b, dtype=torch.long)
        for i, s in enumerate(seqs):
            pad = t - len(s["ids"])
            input_ids[i, pad:] = torch.tensor(s["ids"])
            labels[i, pad:] = torch.tensor(s["labels"])
            attention_mask[i, pad:] = 1
            token_type_ids[i, pad + s["prefix_len"] :] = 1
            meta_end[i] = pad + s["meta_end"] if s["meta_end"] >= 0 else t - 1
        position_ids = (attention_mask.cumsum(-1)).clamp_min(1)  # (B, T), 1-indexed like PaliGemma
        speed = torch.tensor([float(s["speed"]) for s in samples], dtype=torch.float32)
        batch: dict[str, torch.Tensor] = {
            "pixel_values": torch.cat(
                [self.images_to_tensor(s["images"]) for s in samples]
            ),  # (B*6, 3, H, W)
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "speed": speed,
            "ego_velocity": torch.stack([speed, torch.zeros_like(speed)], -1),  # (B, 2) ego frame
        }
        if train:
            batch["labels"] = labels
            batch["meta_end_index"] = meta_end
            if all("trajectory" in s for s in samples):
                batch["trajectory"] = torch.as_tensor(
                    np.stack([s["trajectory"] for s in samples]), dtype=torch.float32
                )
        if all(s.get("route") is not None for s in samples):
            batch["route"] = torch.as_tensor(np.stack([s["route"] for s in samples]), dtype=torch.float32)  # (B, 3, 2)
        if all("occupancy" in s for s in samples):
            batch["occupancy"] = torch.as_tensor(np.stack([s["occupancy"] for s in samples])).long()
            if all("mask_camera" in s for s in samples):
                batch["mask_camera"] = torch.as_tensor(np.stack([s["mask_camera"] for s in samples])).bool()
        return batch

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """Token ids -> text (special tokens dropped)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    # ---- persistence -------------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        """Write the tokenizer files and ``processor_config.json`` into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(path))
        cfg = {
            "image_size": self.image_size,
            "image_tokens_per_camera": self.image_tokens_per_camera,
            "num_cameras": self.num_cameras,
            "include_qa": self.include_qa,
            "speed_in_prompt": self.speed_in_prompt,
        }
        (path / PROCESSOR_FILE).write_text(json.dumps(cfg, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> OccVLAProcessor:
        """Load a processor written by ``save_pretrained`` (or a checkpoint dir: then pass sizes yourself)."""
        path = Path(path)
        cfg_file = path / PROCESSOR_FILE
        if not cfg_file.is_file():
            raise FileNotFoundError(f"processor config missing: {cfg_file}")
        try:
            cfg = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"corrupt processor config {cfg_file}: {e}") from None
        try:
            tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # noqa: BLE001 - corrupt tokenizer files raise many exception types
            raise ValueError(
                f"cannot load the tokenizer in {path}: {type(e).__name__}: {str(e)[:200]}"
            ) from None
        return cls(tok, **cfg)
