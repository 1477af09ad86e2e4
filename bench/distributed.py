"""Several processes training one model together under ``torchrun`` (PyTorch DDP).

``torchrun --nproc_per_node N -m bench run ...`` starts N copies of the runner. Each one runs
its jobs in-process (no child process per model), joins one process group, trains on its own
share of every epoch's batches with gradients averaged by DistributedDataParallel, and only
rank 0 validates, evaluates, checkpoints and writes records; the others wait for it.

Single node only: the ranks share the file system (dataset caches, checkpoints). Every helper
here is a no-op in a single process, so training code calls them unconditionally.
"""

from __future__ import annotations

import atexit
import math
import os
from datetime import timedelta

# Rank 0 validates and evaluates (beam search over a whole test split) while the others wait
# for it at a barrier or a broadcast; the default timeouts (10-30 min) would kill them first.
WAIT_TIMEOUT = timedelta(hours=12)

_control = None  # CPU (gloo) group for the small messages: stop flags, losses, barriers


def launched() -> bool:
    """Whether torchrun started this process as one of several (the runner then trains in-process)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether this process is in an initialised group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if active() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device: str) -> str:
    """Join torchrun's process group (gloo on CPU, nccl on CUDA); returns this rank's device:
    ``cuda:LOCAL_RANK`` for ``--device auto`` (with a GPU) or ``cuda``, else ``cpu``."""
    import torch
    import torch.distributed as dist

    from bench.errors import UsageError

    global _control
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if device != "cuda":
            raise UsageError(
                f"--device {device}: under torchrun each process uses cuda:LOCAL_RANK; pass --device cuda or auto"
            )
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)  # nccl and torch.cuda.max_memory_allocated() use the current device
    if not dist.is_initialized():
        cuda = device.startswith("cuda")
        dist.init_process_group("nccl" if cuda else "gloo", timeout=None if cuda else WAIT_TIMEOUT)
        # nccl collectives run on the GPU; waiting for rank 0 goes through a CPU group instead
        _control = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT) if cuda else dist.group.WORLD
        # once per process: commands that call the runner several times (check, ablate) reuse the group
        atexit.register(shutdown)
    return device


def shutdown() -> None:
    import torch.distributed as dist

    global _control
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _control = None


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier(group=_control)


def broadcast(obj):
    """Rank 0's `obj` on every rank (a decision every rank must take the same way)."""
    if not active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def gather(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not active():
        return [obj]
    import torch.distributed as dist

    out = [None] * world_size()
    dist.all_gather_object(out, obj, group=_control)
    return out


def mean(total: float, count: int) -> float:
    """total / count summed over the ranks (e.g. the epoch's mean loss over every batch)."""
    if active():
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(total), float(count)], dtype=torch.float64)
        dist.all_reduce(t, group=_control)
        total, count = t.tolist()
    return total / max(count, 1)


def shard_len(n_batches: int) -> int:
    """Batches (optimizer steps) each rank takes per epoch when there are `n_batches` in all."""
    return math.ceil(n_batches / world_size())


def shard(batches: list) -> list:
    """This rank's share of an epoch's batches. Every rank must hold the same list (the same
    seeded shuffle); it is padded by wrapping around to a multiple of the world size, as
    torch's DistributedSampler does, so that every rank takes the same number of steps."""
    w = world_size()
    if w == 1 or not batches:
        return batches
    padded = [batches[i % len(batches)] for i in range(shard_len(len(batches)) * w)]
    return padded[rank() :: w]


def wrap(module, device: str, find_unused_parameters: bool = False):
    """`module` in DistributedDataParallel (gradients averaged over the ranks in backward), or
    `module` itself in a single process."""
    if not active():
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device] if device.startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
