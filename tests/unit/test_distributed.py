"""The pure parts of training across processes: who takes which rows, the launcher's
command, and scoring gathered back into row order."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from agnews.training.distributed import Processes, launch_command, sharded_probs
from agnews.training.gradients import rows_of


@pytest.mark.parametrize("n,world", [(13, 2), (1, 2), (7, 3), (8, 4), (0, 2), (5, 1)])
def test_shares_cover_every_row_once_in_order_and_differ_by_at_most_one(n, world):
    shares = [Processes(rank, world).share(n) for rank in range(world)]
    rows = [r for s in shares for r in range(n)[s]]
    assert rows == list(range(n))
    sizes = [s.stop - s.start for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_a_micro_batch_of_a_share_maps_to_rows_of_the_batch():
    share = Processes(1, 2).share(13)  # rows 7..12
    assert (share.start, share.stop) == (7, 13)
    assert rows_of(share, slice(0, 4)) == slice(7, 11)
    assert rows_of(share, slice(4, 8)) == slice(11, 13)  # clipped to the share


def test_one_machine_launches_standalone_and_many_leave_the_rendezvous_to_torchrun(monkeypatch):
    for name in ("PET_NNODES", "PET_RDZV_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    command = launch_command(2, "steps.train", ["--epochs", "1"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[3:6] == ["--nproc_per_node", "2", "--standalone"]
    assert command[-4:] == ["-m", "steps.train", "--epochs", "1"]
    monkeypatch.setenv("PET_NNODES", "2")
    monkeypatch.setenv("PET_RDZV_ENDPOINT", "trainer-0:29500")
    assert "--standalone" not in launch_command(2, "steps.train", [])


def test_one_process_scores_every_row_in_order():
    probs = sharded_probs(lambda rows: np.stack([rows, -rows], axis=1).astype(float), 5,
                          Processes())
    assert probs[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_num_processes_below_one_is_refused_with_the_fix():
    from agnews.config import TrainConfig
    from agnews.errors import UserError

    with pytest.raises(UserError, match="num_processes=0 must be at least 1"):
        TrainConfig(num_processes=0)
