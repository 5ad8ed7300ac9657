"""Training across processes: PyTorch's launcher (torchrun) starts the processes, accelerate's
`PartialState` joins them into one process group (gloo on CPU, NCCL on GPUs) and gives each
its device, and PyTorch's DistributedDataParallel averages their gradients.

`-P num_processes=N` makes `train` start itself again under torchrun with N processes on this
machine. Across machines, torchrun's own settings come from the environment (PET_NNODES,
PET_NODE_RANK, PET_RDZV_ENDPOINT, PET_RDZV_BACKEND): the same command runs on every machine.
Every process takes its share of the rows of every optimiser step; process 0 alone logs to
MLflow, writes checkpoints and saves the model.

accelerate's `Accelerator` is not used for the loop: its mixed-precision setting is one per
Python process and cannot change between two `fit` calls, which the precision probe and the
tests make; autocast and loss scaling stay in `agnews.model.device`.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

# Deferred imports: accelerate and the device probe, only when processes join a run
# (`Processes.join`).

# torchrun's settings for more than one machine; without them the processes meet on this one.
MULTI_NODE_VARS = ("PET_NNODES", "PET_RDZV_ENDPOINT")


def in_worker() -> bool:
    """True inside a process torchrun started (it sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def launch_command(num_processes: int, module: str, argv: list[str]) -> list[str]:
    """The torchrun command that runs `python -m module argv` in `num_processes` processes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
               str(num_processes)]
    if not any(os.environ.get(name) for name in MULTI_NODE_VARS):
        # one machine: a rendezvous on a free local port, so two trains at once never meet
        command.append("--standalone")
    return [*command, "-m", module, *argv]


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def join(cls) -> Processes:
        """Join the process group torchrun set up (or stay alone outside torchrun)."""
        if not in_worker():
            from agnews.model.device import pick_device

            return cls(device=pick_device())
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(state.process_index, state.num_processes, state.device)

    def leave(self) -> None:
        """Close the process group before the process exits: a gloo group still open when
        Python tears down can abort the process ("terminate called without an active
        exception"), which torchrun reports as a failed run."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def share(self, n: int) -> slice:
        """This process's part of `n` rows: near-equal contiguous parts, in rank order."""
        small, extra = divmod(n, self.world)
        start = self.rank * small + min(self.rank, extra)
        return slice(start, start + small + (self.rank < extra))

    def wrap(self, model):
        """The model as the training loop calls it: DDP across processes, itself alone."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def total(self, value: float) -> float:
        """The sum of `value` over all processes."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def gather(self, value: Any) -> list[Any]:
        """`value` from every process, in rank order (picklable objects)."""
        if self.world == 1:
            return [value]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, value)
        return out

    def decided_by_main(self, decide: Callable[[], Any]) -> Any:
        """What process 0 decides, on every process (e.g. a precision it measured)."""
        if self.world == 1:
            return decide()
        box = [decide() if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def sharded_probs(score_rows: Callable[[np.ndarray], np.ndarray], n: int,
                  processes: Processes) -> np.ndarray:
    """Class probabilities of rows 0..n-1, each process scoring its part, gathered in order."""
    mine = np.arange(n)[processes.share(n)]
    parts = processes.gather((mine, score_rows(mine)))
    probs = np.concatenate([p for _, p in parts])
    order = np.concatenate([rows for rows, _ in parts])
    out = np.empty_like(probs)
    out[order] = probs
    return out
