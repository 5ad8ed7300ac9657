"""One batch's backward passes: this process's share of the rows, in micro-batches of at most
`micro_batch_tokens` padded tokens, leaving in every parameter's `.grad` the gradient of the
whole batch's mean loss, as one process with the whole batch would (DDP sums across
processes at the last micro-batch only)."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from agnews.model.batching import micro_batches
from agnews.model.device import autocast
from agnews.training.distributed import Processes


def rows_of(share: slice, part: slice) -> slice:
    """`part` (a micro-batch of this process's share) as rows of the whole batch."""
    return slice(share.start + part.start, min(share.start + part.stop, share.stop))


def backward(net, idx: np.ndarray, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
             micro_batch_tokens: int, precision: str, scaler, processes: Processes,
             label_smoothing: float = 0.0) -> float:
    """The backward passes of one batch (rows `idx` of `labels`, padded as `ids`/`mask`):
    this process's share of the rows, in micro-batches of at most `micro_batch_tokens`, leaves
    in every parameter's `.grad` the gradient of the whole batch's mean loss (summed over
    processes by DDP). Returns that mean loss (cross-entropy with `label_smoothing`)."""
    device = next(net.parameters()).device
    loss, share = 0.0, processes.share(len(idx))
    # A process with no row in a short last batch still joins the gradient average, with one
    # row weighted 0.
    weight = 1.0 if share.stop > share.start else 0.0
    share = share if weight else slice(0, 1)
    parts = micro_batches(share.stop - share.start, ids.shape[1], micro_batch_tokens)
    for i, part in enumerate(parts):
        rows = rows_of(share, part)
        # DDP averages gradients over processes at the last part's backward only.
        last = i == len(parts) - 1 or processes.world == 1
        with contextlib.nullcontext() if last else net.no_sync():
            # Each part's mean loss, weighted by its share of the batch's rows (times the
            # processes DDP averages over): the summed gradients equal those of the whole
            # batch's mean loss.
            with autocast(precision, device):
                # The loss here, not the model's own: transformers' classifiers take no
                # label smoothing; without it this is the same cross-entropy.
                logits = net(input_ids=ids[rows].to(device),
                             attention_mask=mask[rows].to(device)).logits
                part_loss = torch.nn.functional.cross_entropy(
                    logits, labels[idx[rows]].to(device), label_smoothing=label_smoothing)
            part_loss = part_loss * (weight * len(idx[rows]) / len(idx))
            scaler.scale(part_loss * processes.world).backward()
        loss += part_loss.item()
    return processes.total(loss)
