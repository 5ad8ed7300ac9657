"""Which epoch's weights training keeps (`select_best`): the last, unless an earlier epoch is
more accurate on the validation rows than chance explains.

With the learning rate decaying linearly to zero, the last epoch is the one the schedule aims
at, and a few hundred validation rows cannot tell epochs a fraction of a point apart: the
lowest `val_loss` on 200 rows kept the first of four epochs of the full-data preset's
settings, points of test accuracy below the last (docs/performance.md, "Which epoch is kept",
with the rates below). So the candidate is the most accurate earlier epoch on the validation
rows, and it is kept only if McNemar's exact test (the register step's `mcnemar_better`, on
the rows the two epochs answer differently) finds it more often right than the last at `ALPHA`
divided by the number of earlier epochs: the candidate is the best of them on these same rows,
so testing it at `ALPHA` itself would keep one of several equally accurate epochs more often
than `ALPHA` says (Bonferroni's correction; `benchmarks/epoch_selection.py` measures the rate
it leaves).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agnews.registry.paired import Paired, mcnemar_better

ALPHA = 0.05  # how often epochs of equal accuracy may keep an earlier one, at most


@dataclass(frozen=True)
class Choice:
    epoch: int       # the epoch whose weights training keeps
    p_value: float   # McNemar's p that the candidate beats the last; 1.0 if none was tested


def is_candidate(right: np.ndarray, candidate: np.ndarray | None) -> bool:
    """Whether an epoch answering `right` (per validation row) replaces the earlier
    `candidate` as the most accurate so far; a tie goes to the later epoch."""
    return candidate is None or np.mean(right) >= np.mean(candidate)


def choose_epoch(last_epoch: int, last_right: np.ndarray, candidate_epoch: int,
                 candidate_right: np.ndarray | None, alpha: float = ALPHA) -> Choice:
    """The last epoch, or the earlier candidate if it is significantly more often right
    (tested at `alpha` over the number of epochs it was chosen among)."""
    if candidate_right is None or candidate_epoch >= last_epoch:
        return Choice(last_epoch, 1.0)
    p = mcnemar_better(Paired.of(candidate_right, last_right))
    return Choice(candidate_epoch if p < alpha / (last_epoch - 1) else last_epoch, p)


def rule_per_draw(right: np.ndarray, alpha: float = ALPHA) -> int:
    """The epoch (1-based) the rule keeps, given each epoch's per-row correctness (epochs x
    rows) on one validation set, as `fit` would decide it epoch by epoch."""
    candidate_epoch, candidate = 0, None
    for epoch, row in enumerate(right[:-1], start=1):
        if is_candidate(row, candidate):
            candidate_epoch, candidate = epoch, row
    return choose_epoch(len(right), right[-1], candidate_epoch, candidate, alpha).epoch
