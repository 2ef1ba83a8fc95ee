"""Data-parallel training under ``torchrun``: the same ``occvla-train`` command, N processes, one global batch.

``torchrun --nproc_per_node=2 -m occvla.train ...`` starts N copies; each reads torchrun's RANK / WORLD_SIZE (the
launcher's own protocol, as torch.distributed does) and joins one process group (gloo on CPU, NCCL on CUDA). Then:
- every rank draws the same global batch of indices (``batch_indices`` is a pure function of seed and step) and
  works on its contiguous slice of ``train.batch_size / world_size`` samples;
- after backward, gradients are averaged over ranks in one coalesced all-reduce, so the optimiser step equals one
  process on the whole batch for per-sample-mean losses (planning L1, VQ-VAE); token- and voxel-mean losses (text,
  occupancy) average per-rank means, equal to the global mean when ranks hold equal token counts;
- floating-point buffers (the VQ-VAE's EMA codebook in stage 0) are averaged after each step, keeping ranks equal;
- only rank 0 writes the run directory (config, checkpoints, metrics, final weights) and runs the evaluation.
Why not the DistributedDataParallel wrapper: stage 3 trains the head on cached features (the model's forward is
not called) and the frozen parts change per stage; one explicit all-reduce covers every path the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_launcher(device: str) -> str:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns the device for this rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = device.startswith("cuda")
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def local_slice(indices: list[int]) -> list[int]:
    """This rank's contiguous share of a global batch (the global batch size must divide by the world size)."""
    n = world_size()
    if n == 1:
        return indices
    if len(indices) % n:
        raise ValueError(f"train.batch_size {len(indices)} must be a multiple of the {n} processes")
    k = len(indices) // n
    return indices[rank() * k : (rank() + 1) * k]


def _all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    """Average tensors over ranks in place, with one coalesced all-reduce."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t).to(t.dtype))
        offset += n


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Mean of the gradients over ranks (a parameter without a gradient on this rank counts as zero)."""
    if world_size() == 1:
        return
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    _all_reduce_mean(grads)


def average_float_buffers(module: torch.nn.Module) -> None:
    """Mean of every floating-point buffer over ranks (EMA statistics stay identical on all ranks)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        _all_reduce_mean([b for b in module.buffers() if b.is_floating_point()])


def broadcast_state(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers everywhere (the start of a run, or after a resume)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def mean_scalar(value: float) -> float:
    """The mean of a per-rank scalar (for logging the global loss)."""
    if world_size() == 1:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world_size()
