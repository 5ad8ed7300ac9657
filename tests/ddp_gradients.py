"""Started by torchrun in CPU processes (tests/e2e/test_distributed_runs.py): after
`agnews.training.gradients.backward` under DDP, every parameter's gradient equals, to float
rounding, the gradient of the whole batch's mean loss computed in one process.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_gradients.py ROWS
"""
from __future__ import annotations

import copy
import sys

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from agnews.model.device import grad_scaler
from agnews.training.distributed import Processes
from agnews.training.gradients import backward


def main(rows: int) -> None:
    processes = Processes.join()
    torch.manual_seed(0)  # the same model in every process
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=4,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config)
    reference = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (rows, 16), generator=generator)
    mask = torch.ones_like(ids)
    mask[::2, 9:] = 0  # texts of two lengths
    labels = torch.randint(0, 4, (rows + 3,), generator=generator)
    idx = np.arange(rows)[::-1] + 3  # rows of a larger table, in a shuffled order
    loss = backward(processes.wrap(model), idx, ids, mask, labels, 32, "fp32",
                    grad_scaler("fp32", torch.device("cpu")), processes)
    whole = reference(input_ids=ids, attention_mask=mask, labels=labels[idx.copy()]).loss
    whole.backward()
    for (name, mine), theirs in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(mine.grad, theirs.grad, rtol=1e-4, atol=1e-7), name
    assert abs(loss - whole.item()) < 1e-6, (loss, whole.item())
    print(f"rank {processes.rank} of {processes.world}: the gradients of {rows} rows match")
    processes.leave()


if __name__ == "__main__":
    main(int(sys.argv[1]))
