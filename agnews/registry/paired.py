"""Is the candidate better than the champion, or not worse, on the same test rows?

Both models answer the same rows, so their results are paired: only the rows where exactly one
of them is right carry information about which is better. `better` is McNemar's exact test,
one-sided (scipy's binomial test on those discordant rows). `not_worse` asks whether the
candidate's accuracy is lower than the champion's by at most a margin: Tango's score test for
the difference of paired proportions, written here because neither scipy nor statsmodels 0.15
has a paired non-inferiority test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Deferred import: scipy.stats, in the functions that use it.


@dataclass(frozen=True)
class Paired:
    """The 2x2 table of a paired comparison, from the candidate's and the champion's
    per-row correctness on the same rows."""

    rows: int
    candidate_right: int
    champion_right: int
    only_candidate: int  # rows the candidate gets right and the champion wrong
    only_champion: int   # rows the champion gets right and the candidate wrong

    @classmethod
    def of(cls, candidate: np.ndarray, champion: np.ndarray) -> Paired:
        candidate, champion = np.asarray(candidate, bool), np.asarray(champion, bool)
        if candidate.shape != champion.shape:
            raise ValueError(f"{candidate.shape} candidate rows against {champion.shape} "
                             "champion rows: both must answer the same rows")
        return cls(int(candidate.size), int(candidate.sum()), int(champion.sum()),
                   int(np.sum(candidate & ~champion)), int(np.sum(champion & ~candidate)))


def mcnemar_better(table: Paired) -> float:
    """One-sided exact McNemar p-value of "the candidate is more often right": among the
    rows where the two disagree, the candidate's share against 1/2."""
    from scipy.stats import binomtest

    disagree = table.only_candidate + table.only_champion
    if disagree == 0:
        return 1.0
    return float(binomtest(table.only_candidate, disagree, 0.5, alternative="greater").pvalue)


def _restricted_p21(b: int, c: int, n: int, delta: float) -> float:
    """The maximum-likelihood share of champion-only rows when the accuracy difference is
    `delta` (Tango 1998, eq. 6): the positive root of 2n p^2 + B p + C = 0."""
    big_b = -b - c + (2 * n - b + c) * delta
    big_c = -c * delta * (1 - delta)
    return (math.sqrt(big_b * big_b - 8 * n * big_c) - big_b) / (4 * n)


def tango_not_worse(table: Paired, margin: float) -> float:
    """One-sided p-value of "the candidate's accuracy is lower by `margin` or more" (the null
    hypothesis rejected when the candidate is not worse by more than the margin): Tango's score
    test of the paired difference at -margin."""
    from scipy.stats import norm

    n, b, c = table.rows, table.only_candidate, table.only_champion
    if n == 0:
        return 1.0
    delta = -margin
    p21 = _restricted_p21(b, c, n, delta)
    variance = n * (2 * p21 + delta * (1 - delta))
    if variance <= 0:  # margin 0 and no disagreement: nothing tells the two apart
        return 1.0
    z = (b - c - n * delta) / math.sqrt(variance)
    return float(norm.sf(z))
