"""One code path for one process or many: torchrun sets RANK/WORLD_SIZE, everything else follows (nanoGPT style).

    tenku train dit --preset world-s-gpu --data CACHE --out RUN                          # one process
    torchrun --nproc_per_node 8 -m tenku.cli train dit --preset world-s-gpu --data CACHE --out RUN  # 8 GPUs, DDP
    ... --set strategy=fsdp                                                              # FSDP2 instead

Multi-node (NCCL): run the same command on every node with the rendezvous of node 0, e.g. on 2 nodes x 8 GPUs

    torchrun --nnodes 2 --nproc_per_node 8 --node_rank $NODE_RANK \\
             --rdzv_backend c10d --rdzv_endpoint $MASTER_HOST:29500 --rdzv_id tenku-run-1 \\
             -m tenku.cli train dit --preset world-b-gpu --data /shared/cache --out /shared/runs/b1

RUN must be on a filesystem all nodes see (checkpoints are written by several ranks and renamed by rank 0);
the data path too. NCCL picks the network itself; on clusters with several NICs set NCCL_SOCKET_IFNAME (and
NCCL_IB_HCA for InfiniBand); NCCL_DEBUG=INFO shows what it chose. Batch size is per process: the global batch
is batch_size x grad_accum x world size. On CPUs the backend is gloo (tested: 2 processes on one machine).

DDP (default) replicates the model and all-reduces gradients. FSDP2 (`torch.distributed.fsdp.fully_shard`)
shards parameters, gradients and optimizer state: one shard unit per transformer block (`dit.blocks[i]`),
then the root; bf16 parameters with fp32 gradient reduction on CUDA (MixedPrecisionPolicy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from tenku.checkpoint import state_sha256


DEVICES = ("auto", "cpu", "cuda")  # what every `--device` flag accepts; "auto" is CUDA when there is one


@dataclass
class DistInfo:
    """Who this process is: the one rank record of training and its checkpoints (train_state), and what every
    collective here takes. The defaults describe a plain single process on the CPU."""

    ddp: bool = False  # launched by torchrun (any strategy); False = plain single process
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    sharded: bool = False  # models are FSDP-sharded (strategy fsdp under torchrun)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        barrier(self)

    def agree(self, ok: bool) -> bool:
        """True only if every rank passes True (all-reduce MIN)."""
        return all_agree(self, ok)


def pick_device(device: str = "auto") -> str:
    """"cpu" or "cuda" for a `--device` value ("auto": CUDA when there is one); ValueError naming a bad one."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return device


def init(device: str = "auto", strategy: str = "ddp") -> DistInfo:
    """Read torchrun's environment, pick the device and start the process group (nccl on CUDA, else gloo).
    `strategy` "fsdp" marks the record as sharded when there are processes to shard over."""
    ddp = int(os.environ.get("RANK", -1)) != -1
    device = pick_device(device)
    if not ddp:
        return DistInfo(False, 0, 0, 1, torch.device(device if device == "cpu" else "cuda:0"))
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if device == "cuda":
        dev = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=dev if backend == "nccl" else None)
    return DistInfo(True, rank, local_rank, world, dev, sharded=strategy == "fsdp")


def cleanup(info: DistInfo) -> None:
    if info.ddp and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.ddp:
        dist.barrier()


def all_agree(info: DistInfo, ok: bool) -> bool:
    """True only if every rank passes True."""
    if not info.ddp:
        return ok
    t = torch.tensor([1.0 if ok else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0.5)


def mean_across(info: DistInfo, value: torch.Tensor) -> torch.Tensor:
    """Average a (detached) tensor over ranks; identity for one process."""
    if not info.ddp:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def shard_fsdp(model: nn.Module, info: DistInfo, bf16: bool) -> nn.Module:
    """FSDP2 in place: each `model.blocks[i]` is a shard unit, then the root (embeddings, head)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(info.device.type, (info.world_size,))
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    for block in getattr(model, "blocks", []):
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


def wrap(model: nn.Module, info: DistInfo, strategy: str, bf16: bool = False) -> nn.Module:
    """The module to call in the training step: the model itself, DDP(model) or the FSDP2-sharded model."""
    if not info.ddp:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [info.local_rank] if info.device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    if strategy == "fsdp":
        return shard_fsdp(model, info, bf16)
    raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}")


def full_state_dict(model: nn.Module, info: DistInfo) -> dict[str, torch.Tensor]:
    """Unsharded CPU state dict (a collective under FSDP: every rank must call; rank 0 gets the tensors)."""
    if not info.sharded:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def check_replicas(model: nn.Module, info: DistInfo) -> str:
    """DDP: raise if the ranks' weights differ (they must stay bit-identical). Returns this rank's checksum."""
    digest = state_sha256(model)
    if info.ddp:
        mine = torch.tensor([int(digest[:15], 16)], dtype=torch.int64, device=info.device)
        every = [torch.zeros_like(mine) for _ in range(info.world_size)]
        dist.all_gather(every, mine)
        if len({int(x) for x in every}) > 1:
            raise RuntimeError(f"DDP replicas diverged: weight checksums per rank {[int(x) for x in every]}")
    return digest
