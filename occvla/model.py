"""OccVLA: PaliGemma (SigLIP + Gemma/Gemma2) + occupancy branch + frozen VQ-VAE decoder + planning head.

Data flow for one sample (V = 6 cameras, N image tokens per camera, D = LM width):
  pixel_values (V, 3, H, W) -> SigLIP -> (V, P, Dv) -> k x k token pool -> projector -> (V, N, D)
  -> scattered into the V*N <image> slots of the prompt -> Gemma LM (bidirectional prefix, causal suffix)
  - text: the LM head on the suffix (the meta-action; at inference decoded greedily over the meta-action
    vocabulary only, so decoding ends exactly on the last meta-action token);
  - occupancy (training, or ``compute_occupancy``): image-token rows of LM layer ``occ.source_layer``
    -> OccupancyBranch -> (C, h, w) latent -> frozen VQ-VAE decoder -> (18, X, Y, Z) voxel logits;
  - planning: final hidden state at the last meta-action token + ego velocity + per-camera mean of final
    image-token hidden states -> PlanningHead -> (6, 2) waypoints.
The occupancy branch only reads LM hidden states, so skipping it changes nothing else, bit for bit.

Only public transformers API: PaliGemmaForConditionalGeneration is the container of the weights (so PaliGemma
checkpoints load as they are); this module builds the input embeddings itself (token embeddings with the pooled,
projected image features scattered into the <image> slots) and calls the language model with an explicit 4-D
prefix-LM mask, which transformers 5.x passes through unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    Gemma2Config,
    GemmaConfig,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    SiglipVisionConfig,
)

from occvla.config import LoraConfig, OccVLAConfig, apply_overrides, preset_config
from occvla.occ_branch import OccupancyBranch, occupancy_loss
from occvla.planning import PlanningHead, planning_loss
from occvla.vqvae import OccVQVAE, VQVAEConfig

DEFAULT_IMAGE_TOKEN_ID = 4  # <image> in the offline tokenizer (occvla/tokenizer.py)


@dataclass
class OccVLAOutput:
    """Result of ``OccVLAModel.forward``. Losses are None when their targets are absent from the batch."""

    loss: torch.Tensor | None = None
    text_loss: torch.Tensor | None = None
    occ_loss: torch.Tensor | None = None
    plan_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, T - logits_start, vocab): text-region logits only
    logits_start: int = 0  # sequence position of logits[:, 0]
    occ_logits: torch.Tensor | None = None  # (B, 18, X, Y, Z)
    waypoints: torch.Tensor | None = None  # (B, 6, 2) ego frame, metres


@dataclass
class GenerationOutput:
    """Result of ``OccVLAModel.generate``: constrained greedy meta-action ids and the planner's waypoints."""

    token_ids: list[list[int]]
    waypoints: torch.Tensor  # (B, 6, 2)
    occ_logits: torch.Tensor | None = None  # (B, 18, X, Y, Z) when asked for
    meta_hidden: torch.Tensor | None = (
        None  # (B, D) final hidden state the planner read (last meta-action token)
    )
    visual: torch.Tensor | None = None  # (B, V*g*g, D) the pooled visual input the planner read


def paligemma_config(cfg: OccVLAConfig, image_token_id: int) -> PaliGemmaConfig:
    """transformers PaliGemmaConfig for our sizes (SigLIP + Gemma or Gemma2)."""
    v, t = cfg.vision, cfg.text
    vision = SiglipVisionConfig(
        hidden_size=v.hidden_size,
        intermediate_size=v.intermediate_size,
        num_hidden_layers=v.num_layers,
        num_attention_heads=v.num_heads,
        patch_size=v.patch_size,
        image_size=v.image_size,
        vision_use_head=False,
    )
    common = {
        "vocab_size": t.vocab_size,
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_layers,
        "num_attention_heads": t.num_heads,
        "num_key_value_heads": t.num_kv_heads,
        "head_dim": t.head_dim,
        "max_position_embeddings": t.max_position_embeddings,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    }
    text = Gemma2Config(**common) if t.arch == "gemma2" else GemmaConfig(**common)
    # Attention kernels: transformers' default choice (SDPA where the architecture supports it; Gemma2 runs
    # eager only in transformers 5.x, Gemma (v1) and SigLIP run SDPA).
    return PaliGemmaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vocab_size=t.vocab_size,
        projection_dim=t.hidden_size,
        hidden_size=t.hidden_size,
    )


def prefix_lm_mask(
    attention_mask: torch.Tensor, token_type_ids: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """PaliGemma's prefix-LM mask as an additive 4-D mask: (B, T) -> (B, 1, T, T) of 0 / dtype-min.

    Prefix tokens (token type 0: image tokens + prompt) attend to the whole prefix (bidirectional); suffix tokens
    (type 1: meta-action, QA, <eos>) attend causally; padding is never attended to. A padding row attends to itself
    only, so no softmax row is all-masked (NaN-free with SDPA and eager alike).
    """
    valid = attention_mask.bool()  # (B, T)
    prefix = valid & ~token_type_ids.bool()  # (B, T)
    t = valid.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=valid.device).tril()  # (T, T)
    allowed = (causal[None] | (prefix[:, :, None] & prefix[:, None, :])) & valid[:, None, :]  # (B, T, T)
    allowed |= torch.eye(t, dtype=torch.bool, device=valid.device)[None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=valid.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def _decode_step_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, K) key validity -> additive (B, 1, 1, K) mask for one new token attending to the cache and itself."""
    mask = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(~attention_mask.bool(), torch.finfo(dtype).min)[:, None, None]


def meta_action_trie(sequences: list[list[int]]) -> dict:
    """Token trie of the allowed meta-actions: nested {token id: subtree}; a leaf ({}) ends a meta-action.

    Raises ValueError when one sequence is a prefix of another (decoding could then not tell where to stop).
    """
    if not sequences:
        raise ValueError("constrained decoding needs at least one meta-action token sequence")
    root: dict = {}
    for seq in sequences:
        if not seq:
            raise ValueError("a meta-action tokenised to no tokens")
        node = root
        for tok in seq:
            node = node.setdefault(int(tok), {})
    ends = {tuple(s) for s in sequences}
    for seq in ends:
        node = root
        for tok in seq:
            node = node[tok]
        if node:
            raise ValueError(f"meta-action tokens {list(seq)} are a prefix of another meta-action's tokens")
    return root


def _trie_depth(node: dict) -> int:
    return 1 + max(_trie_depth(c) for c in node.values()) if node else 0


class OccVLAModel(nn.Module):
    """The OccVLA model (see module docstring). Build with ``occvla.build_model``."""

    def __init__(self, cfg: OccVLAConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.image_token_id = cfg.image_token_id if cfg.image_token_id is not None else DEFAULT_IMAGE_TOKEN_ID
        if cfg.pretrained_path:
            self.vlm = _load_pretrained_vlm(cfg, self.image_token_id)
        else:
            self.vlm = PaliGemmaForConditionalGeneration(paligemma_config(cfg, self.image_token_id))
        d = cfg.text.hidden_size
        # True once a trained (stage-0) VQ-VAE is plugged in; saved with the weights, so later stages inherit it
        self.register_buffer("vqvae_trained", torch.tensor(False))
        if cfg.occ.enabled:
            vq_cfg = VQVAEConfig(grid=tuple(cfg.occ.grid), num_classes=cfg.occ.num_classes, **cfg.occ.vqvae)
            self.vqvae: OccVQVAE | None = OccVQVAE(vq_cfg)
            self._freeze_vqvae()
            self.occ_branch: OccupancyBranch | None = OccupancyBranch(
                cfg.occ, d, cfg.image_tokens, self.vqvae.latent_shape
            )
        else:
            self.vqvae, self.occ_branch = None, None
        self.planner = PlanningHead(cfg.planner, d, cfg.num_cameras, cfg.num_waypoints)
        self.lora: LoraConfig | None = None  # set by occvla.peft_utils.wrap_with_peft

    # ---- parts -------------------------------------------------------------------------------------------------
    @property
    def language_model(self) -> nn.Module:
        return self.vlm.model.language_model

    @property
    def vision_tower(self) -> nn.Module:
        return self.vlm.model.vision_tower

    def _freeze_vqvae(self) -> None:
        self.vqvae.requires_grad_(False)
        self.vqvae.eval()

    def set_vqvae(self, vqvae: OccVQVAE) -> None:
        """Plug in a stage-0-trained VQ-VAE (frozen from here on). Its grid and latent shape must match."""
        if self.occ_branch is None:
            raise ValueError("this model was built with occ.enabled=False; it has no occupancy branch")
        if (
            tuple(vqvae.cfg.grid) != tuple(self.config.occ.grid)
            or vqvae.latent_shape != self.vqvae.latent_shape
        ):
            raise ValueError(
                f"VQ-VAE grid {tuple(vqvae.cfg.grid)} / latent {vqvae.latent_shape} does not match the model's "
                f"grid {tuple(self.config.occ.grid)} / latent {self.vqvae.latent_shape}"
            )
        self.vqvae = vqvae.to(next(self.parameters()).device)
        self._freeze_vqvae()
        self.vqvae_trained.fill_(True)

    @property
    def has_trained_vqvae(self) -> bool:
        """Whether the frozen decoder came from ``set_vqvae``/``load_vqvae`` (here or in an earlier stage)."""
        return bool(self.vqvae_trained)

    def load_vqvae(self, path: str) -> None:
        """Load a VQ-VAE saved by ``OccVQVAE.save`` and plug it in (frozen)."""
        self.set_vqvae(OccVQVAE.load(path))

    def train(self, mode: bool = True) -> OccVLAModel:
        super().train(mode)
        if self.vqvae is not None:
            self.vqvae.eval()  # frozen: its codebook EMA must never update
        return self

    # ---- encoders ----------------------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B*V, 3, H, W) -> projected image tokens (B*V, N, D)."""
        feats = self.vision_tower(pixel_values).last_hidden_state  # (B*V, P, Dv)
        k = self.config.vision.token_pool
        if k > 1:
            n, p, dv = feats.shape
            s = round(p**0.5)
            grid = feats.transpose(1, 2).reshape(n, dv, s, s)  # (B*V, Dv, s, s)
            feats = F.avg_pool2d(grid, k).flatten(2).transpose(1, 2)  # (B*V, (s/k)^2, Dv)
        return self.vlm.model.multi_modal_projector(feats)  # (B*V, N, D)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head (+ Gemma2's final logit soft-capping): (..., D) -> (..., vocab)."""
        logits = self.vlm.lm_head(hidden)
        cap = getattr(self.vlm.config.get_text_config(), "final_logit_softcapping", None)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings (B, T, D) with the projected image features scattered into the <image> slots."""
        embeds = self.vlm.get_input_embeddings()(input_ids)  # (B, T, D)
        if pixel_values is None:
            return embeds
        image_feats = self.encode_images(pixel_values).to(
            embeds.dtype
        )  # (B*V, N, D), camera order per sample
        slots = (input_ids == self.image_token_id)[..., None].expand_as(embeds)  # (B, T, D)
        return embeds.masked_scatter(slots, image_feats)

    def _run_lm(self, batch: dict, hidden_states: bool, use_cache: bool) -> Any:
        """Prefill: the LM over the whole prompt (+ targets) with PaliGemma's prefix-LM mask."""
        embeds = self.embed(batch["input_ids"], batch["pixel_values"])  # (B, T, D)
        mask = prefix_lm_mask(batch["attention_mask"], batch["token_type_ids"], embeds.dtype)  # (B, 1, T, T)
        return self.language_model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=batch.get("position_ids"),
            output_hidden_states=hidden_states,
            use_cache=use_cache,
        )

    def _image_rows(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> image-token rows (B, V*N, D), in prompt (= camera) order."""
        b = hidden.shape[0]
        return hidden[input_ids == self.image_token_id].view(b, self.config.image_tokens, hidden.shape[-1])

    def _occupancy(self, hidden_states: tuple[torch.Tensor, ...], input_ids: torch.Tensor) -> torch.Tensor:
        src = self._image_rows(hidden_states[self.config.occ.source_layer], input_ids)  # (B, V*N, D)
        latent = self.occ_branch(src)  # (B, C, h, w)
        return self.vqvae.decode(latent.float())  # (B, 18, X, Y, Z)

    def _visual(self, last: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Final hidden states (B, T, D) -> image-token rows averaged per camera over a g x g grid (B, V*g*g, D)."""
        b, d, v, g = last.shape[0], last.shape[-1], self.config.num_cameras, self.config.planner.visual_grid
        rows = self._image_rows(last, input_ids).view(b * v, -1, d)  # (B*V, N, D)
        if g == 1:
            return rows.mean(1).view(b, v, d)
        s = round(rows.shape[1] ** 0.5)
        grid = rows.transpose(1, 2).reshape(b * v, d, s, s)  # (B*V, D, s, s), row-major as the patches
        return F.adaptive_avg_pool2d(grid, g).flatten(2).transpose(1, 2).reshape(b, v * g * g, d)

    def _plan(
        self,
        last: torch.Tensor,
        input_ids: torch.Tensor,
        meta_hidden: torch.Tensor,
        ego_velocity: torch.Tensor,
        route: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.planner(meta_hidden, ego_velocity, self._visual(last, input_ids), route)  # (B, 6, 2)

    def planner_inputs(
        self, batch: dict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What the planning head reads for a teacher-forced batch: (meta-action hidden (B, D), ego velocity
        (B, 2), per-camera visual (B, V, D), the route's plan points (B, 3, 2) or None). With the VLM frozen
        (stage 3) this is a fixed function of the sample, so ``occvla-train`` computes it once per sample and
        trains the head on the cache."""
        self.check_batch(batch)
        last = self._run_lm(batch, False, use_cache=False).last_hidden_state  # (B, T, D)
        b = last.shape[0]
        meta = last[torch.arange(b, device=last.device), batch["meta_end_index"]]  # (B, D)
        return meta, batch["ego_velocity"], self._visual(last, batch["input_ids"]), batch.get("route")

    # ---- training forward --------------------------------------------------------------------------------------
    def forward(self, batch: dict, compute_occupancy: bool = True) -> OccVLAOutput:
        """Teacher-forced pass over a processor batch; losses for whatever targets the batch holds.

        ``compute_occupancy=False`` skips the occupancy branch entirely (no hidden states kept, no decoder).
        """
        self.check_batch(batch)
        input_ids = batch["input_ids"]  # (B, T)
        b, t = input_ids.shape
        want_occ = compute_occupancy and self.occ_branch is not None
        out = self._run_lm(batch, want_occ, use_cache=False)
        last = out.last_hidden_state  # (B, T, D)

        # text: logits only where the suffix begins (a 257k vocab over 1.6k image tokens would not fit)
        suffix = batch["token_type_ids"].bool()  # (B, T)
        start = int(suffix.float().argmax(-1).min()) - 1 if bool(suffix.any(-1).all()) else t - 1
        start = max(start, 0)
        logits = self.lm_logits(last[:, start:])  # (B, T-start, V)
        res = OccVLAOutput(logits=logits, logits_start=start)
        losses = []
        labels = batch.get("labels")
        if labels is not None and bool((labels[:, start + 1 :] != -100).any()):
            res.text_loss = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels[:, start + 1 :].reshape(-1),
                ignore_index=-100,
            )
            losses.append(self.config.text_loss_weight * res.text_loss)
        if want_occ:
            res.occ_logits = self._occupancy(out.hidden_states, input_ids)
            if "occupancy" in batch:
                res.occ_loss = occupancy_loss(
                    res.occ_logits,
                    batch["occupancy"],
                    batch.get("mask_camera"),
                    self.config.occ.lovasz_weight,
                )
                losses.append(self.config.occ_loss_weight * res.occ_loss)
        if "meta_end_index" in batch:
            meta_hidden = last[torch.arange(b), batch["meta_end_index"]]  # (B, D)
            res.waypoints = self._plan(
                last, input_ids, meta_hidden, batch["ego_velocity"], batch.get("route")
            ).float()
            if "trajectory" in batch:
                res.plan_loss = planning_loss(res.waypoints, batch["trajectory"])
                losses.append(self.config.plan_loss_weight * res.plan_loss)
        if losses:
            res.loss = torch.stack([x.float() for x in losses]).sum()
        return res

    # ---- inference ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        batch: dict,
        meta_action_ids: list[list[int]],
        return_occupancy: bool = False,
        pad_id: int = 0,
    ) -> GenerationOutput:
        """Greedy meta-action decoding constrained to the meta-action vocabulary, then the planning head.

        ``batch`` is a prompt-only processor batch (``train=False``, left padded); ``meta_action_ids`` the token
        sequences of every allowed meta-action (``OccVLAProcessor.meta_action_ids``). Each step picks the best
        token among those that continue some meta-action; a sample is done when its tokens spell a whole one, and
        the planner reads the hidden state of that last meta-action token, exactly the position training used
        (``meta_end_index``). Nothing else (a QA separator, <eos>) is ever generated, so the position cannot drift.
        """
        self.check_batch(batch)
        input_ids = batch["input_ids"]  # (B, T)
        b = input_ids.shape[0]
        want_occ = return_occupancy and self.occ_branch is not None
        if return_occupancy and self.occ_branch is None:
            raise ValueError("return_occupancy=True but this model was built without the occupancy branch")
        trie = meta_action_trie(meta_action_ids)
        out = self._run_lm(batch, want_occ, use_cache=True)
        cache = out.past_key_values
        last = out.last_hidden_state  # (B, T, D)
        cur = last[:, -1]  # (B, D) hidden of the last fed token
        meta_hidden = cur.clone()
        attn = batch["attention_mask"]
        pos = (
            batch["position_ids"][:, -1:] if "position_ids" in batch else attn.sum(-1, keepdim=True)
        )  # (B, 1)
        nodes = [trie] * b
        done = [False] * b
        tokens: list[list[int]] = [[] for _ in range(b)]
        for _ in range(_trie_depth(trie)):
            logits = self.lm_logits(cur).float()  # (B, vocab)
            allowed = torch.zeros_like(logits, dtype=torch.bool)
            for i in range(b):
                allowed[i, [pad_id] if done[i] else list(nodes[i])] = True
            nxt = logits.masked_fill(~allowed, float("-inf")).argmax(-1)  # (B,)
            for i in range(b):
                if not done[i]:
                    tokens[i].append(int(nxt[i]))
                    nodes[i] = nodes[i][int(nxt[i])]
            attn = torch.cat([attn, attn.new_ones(b, 1)], -1)
            pos = pos + 1
            embeds = self.embed(nxt[:, None])  # (B, 1, D)
            step = self.language_model(
                inputs_embeds=embeds,
                attention_mask=_decode_step_mask(attn, embeds.dtype),
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
            )
            cache = step.past_key_values
            cur = step.last_hidden_state[:, -1]  # (B, D)
            for i in range(b):
                if (
                    not done[i] and not nodes[i]
                ):  # a whole meta-action: its last token's state feeds the planner
                    meta_hidden[i] = cur[i]
                    done[i] = True
            if all(done):
                break
        visual = self._visual(last, input_ids)  # (B, V*g*g, D)
        waypoints = self.planner(
            meta_hidden, batch["ego_velocity"], visual, batch.get("route")
        ).float()  # (B, 6, 2)
        occ = self._occupancy(out.hidden_states, input_ids) if want_occ else None
        return GenerationOutput(
            token_ids=tokens, waypoints=waypoints, occ_logits=occ, meta_hidden=meta_hidden, visual=visual
        )

    # ---- checks ------------------------------------------------------------------------------------------------
    def check_batch(self, batch: dict) -> None:
        """One-line errors for batches that do not fit this model (cameras, image size, NaNs, token count)."""
        for key in ("pixel_values", "input_ids", "attention_mask", "token_type_ids", "ego_velocity"):
            if key not in batch:
                raise ValueError(f"batch lacks {key!r}; build batches with OccVLAProcessor")
        px, ids = batch["pixel_values"], batch["input_ids"]
        b, v, s = ids.shape[0], self.config.num_cameras, self.config.vision.image_size
        if px.dim() != 4 or px.shape[0] != b * v:
            raise ValueError(
                f"pixel_values must be (B*{v}, 3, H, W) = ({b * v}, 3, {s}, {s}), got {tuple(px.shape)}"
            )
        if tuple(px.shape[1:]) != (3, s, s):
            raise ValueError(f"pixel_values images must be 3x{s}x{s}, got {tuple(px.shape[1:])}")
        if not bool(torch.isfinite(px).all()):
            raise ValueError(f"pixel_values contain {int((~torch.isfinite(px)).sum())} NaN/inf values")
        n_img = (ids == self.image_token_id).sum(-1)  # (B,)
        if bool((n_img != self.config.image_tokens).any()):
            raise ValueError(
                f"each prompt needs {self.config.image_tokens} <image> tokens ({v} cameras x "
                f"{self.config.vision.tokens_per_camera}), got {n_img.tolist()}"
            )
        if int(ids.max()) >= self.config.text.vocab_size:
            raise ValueError(f"token id {int(ids.max())} >= model vocab_size {self.config.text.vocab_size}")


def _load_pretrained_vlm(cfg: OccVLAConfig, image_token_id: int) -> PaliGemmaForConditionalGeneration:
    """Load PaliGemma weights from a LOCAL directory (never a hub id)."""
    from pathlib import Path

    path = Path(cfg.pretrained_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"pretrained_path must be a local PaliGemma checkpoint directory, got {path}")
    attn = "eager" if cfg.text.arch == "gemma2" else "sdpa"
    vlm = PaliGemmaForConditionalGeneration.from_pretrained(
        str(path), local_files_only=True, dtype=torch.float32, attn_implementation=attn
    )
    got = (vlm.config.text_config.hidden_size, vlm.config.vision_config.image_size, vlm.config.image_token_id)
    want = (cfg.text.hidden_size, cfg.vision.image_size, image_token_id)
    if got != want:
        raise ValueError(
            f"checkpoint {path} has (text hidden, image size, image token) {got}, config wants {want}"
        )
    return vlm


def build_model(preset_or_config: str | OccVLAConfig | dict = "small", **overrides) -> OccVLAModel:
    """Build an OccVLA model from a preset name, a config, or a config dict, with (nested) overrides.

    Example: ``build_model("tiny", occ={"enabled": False}, text={"num_layers": 2})``.
    """
    if isinstance(preset_or_config, str):
        cfg = preset_config(preset_or_config)
    elif isinstance(preset_or_config, dict):
        cfg = OccVLAConfig.from_dict(preset_or_config)
    elif isinstance(preset_or_config, OccVLAConfig):
        cfg = copy.deepcopy(preset_or_config)
    else:
        raise TypeError(
            f"build_model needs a preset name, OccVLAConfig or dict, got {type(preset_or_config).__name__}"
        )
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return OccVLAModel(cfg)
