"""The batch's accuracy without labels, estimated from the model's confidence calibrated on
the reference's labelled test rows.

Calibration is histogram binning (Zadrozny and Elkan, 2001): the reference's confidences cut
into equal-mass bins, each bin's accuracy measured on the reference's labels. A batch's
expected accuracy is then the bin accuracies weighted by where its confidences fall. Binning
rather than isotonic regression because the estimate's variance then has a closed form, the
sum of two parts: the batch's own outcomes (each row right with its bin's probability) and the
bins' accuracies measured on finitely many reference rows. Written here because NannyML's CBPE,
the kept library that estimates it, brings some twenty dependencies (LightGBM, FLAML, plotly,
cloud file systems, an analytics client) for what is a weighted mean and its variance.

A drop is tested, within the monitor's family, as a one-sided Welch t-test (scipy) of the
batch's calibrated scores against the reference's: with the bins fixed, both sides' mean
scores estimate their expected accuracies, and under no change they are equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agnews.monitoring.drift import Check

# Deferred import: scipy.stats, in the functions that use it.

BINS = 10
LEVEL = 0.95


@dataclass(frozen=True)
class Calibration:
    """Inner bin edges on the confidence, and each bin's accuracy and rows on the reference."""

    edges: np.ndarray
    accuracy: np.ndarray
    rows: np.ndarray

    def bin_of(self, confidence: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(confidence, float), side="right")

    def scores(self, confidence: np.ndarray) -> np.ndarray:
        """Each row's calibrated probability of being right."""
        return self.accuracy[self.bin_of(confidence)]


def calibrate(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Calibration:
    """Equal-mass bins of the reference's confidence (fewer where confidences tie) and the
    reference's accuracy in each."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.unique(np.quantile(confidence, np.linspace(0, 1, bins + 1)[1:-1]))
    index = np.searchsorted(edges, confidence, side="right")
    rows = np.bincount(index, minlength=len(edges) + 1)
    right = np.bincount(index, weights=correct, minlength=len(edges) + 1)
    # An empty bin (a tie at its edge) is never entered by the reference; a batch row that
    # lands in it takes the overall accuracy rather than 0/0.
    accuracy = np.where(rows > 0, right / np.maximum(rows, 1), correct.mean())
    return Calibration(edges, accuracy, rows)


@dataclass(frozen=True)
class Estimate:
    accuracy: float
    low: float
    high: float
    rows: int


def estimate_accuracy(cal: Calibration, confidence: np.ndarray, level: float = LEVEL) -> Estimate:
    """The batch's accuracy as its calibrated scores' mean, with a normal interval whose
    variance adds the batch's Bernoulli outcomes and the bins' measurement error."""
    from scipy.stats import norm

    counts = np.bincount(cal.bin_of(confidence), minlength=len(cal.accuracy))
    rows = int(counts.sum())
    share, acc = counts / rows, cal.accuracy
    spread = acc * (1 - acc)
    variance = (counts * spread).sum() / rows ** 2 + (share ** 2 * spread
                                                      / np.maximum(cal.rows, 1)).sum()
    estimate, half = float((share * acc).sum()), float(norm.ppf(0.5 + level / 2)
                                                       * np.sqrt(variance))
    return Estimate(estimate, max(0.0, estimate - half), min(1.0, estimate + half), rows)


def estimated_accuracy_check(cal: Calibration, reference_confidence: np.ndarray,
                             batch_confidence: np.ndarray, margin: float = 0.0) -> Check:
    """Without labels: whether the batch's estimated accuracy is lower than the reference's
    by more than `margin` (one-sided Welch t-test of the calibrated scores)."""
    from scipy.stats import ttest_ind

    reference, batch = cal.scores(reference_confidence), cal.scores(batch_confidence)
    est = estimate_accuracy(cal, batch_confidence)
    with np.errstate(divide="ignore", invalid="ignore"):  # both sides constant: no variance
        p = float(ttest_ind(batch + margin, reference, equal_var=False,
                            alternative="less").pvalue)
    if not np.isfinite(p):
        p = 1.0 if batch.mean() + margin >= reference.mean() else 0.0
    allowed = f" by more than {margin:.3f}" if margin else ""
    return Check("estimated_accuracy", est.accuracy, p,
                 f"estimated accuracy (no labels) fell to {est.accuracy:.3f} (95% CI "
                 f"{est.low:.3f}-{est.high:.3f}) from the reference's {reference.mean():.3f}"
                 f"{allowed} (p {p:.1e})",
                 detail={"ci_low": est.low, "ci_high": est.high,
                         "reference": float(reference.mean()), "margin": margin})
