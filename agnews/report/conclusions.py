"""Conclusions computed from a run's numbers, each against a stated threshold.

Pure functions of the per-epoch history, the confusion matrix, per-class metrics and
calibration numbers; each returns a sentence in the report language with the numbers that
support it, so a crafted history in a test has one known verdict.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from agnews.config import LABELS
from agnews.report.wording import t

OVERFIT_GAP = 0.05        # train minus validation accuracy at the kept epoch
UNDERFIT_TRAIN_ACC = 0.80  # train accuracy below this: the model has not learned the rows
CONVERGED_DROP = 0.01     # relative fall of val loss in the last epoch that still counts as falling
CALIBRATED_ECE = 0.03     # expected calibration error below this: scores read as probabilities


def fmt(x: float) -> str:
    return f"{x:.4f}"


def signed(x: float) -> str:
    return f"{x:+.4f}"


def fit_verdict(history: pd.DataFrame, best_epoch: int, lang: str = "en") -> str:
    """Over- or underfitting from the gap at the kept epoch, and the gap's trend."""
    kept = history[history["epoch"] == best_epoch].iloc[0]
    gaps = history["train_accuracy"] - history["val_accuracy"]
    gap = kept["train_accuracy"] - kept["val_accuracy"]
    trend = ("trend_flat" if len(history) == 1 else
             "trend_widening" if gaps.iloc[-1] > gaps.iloc[0] else "trend_narrowing")
    text = t(lang, "fit", best=best_epoch, train_acc=fmt(kept["train_accuracy"]),
             val_acc=fmt(kept["val_accuracy"]), gap=signed(gap),
             loss_gap=signed(kept["val_loss"] - kept["train_loss"]),
             first_gap=signed(gaps.iloc[0]), trend=t(lang, trend))
    if gap > OVERFIT_GAP:
        # A gap while validation loss still falls is memorisation that has not yet cost
        # generalisation; a gap with validation loss rising is overfitting that hurts.
        key = "overfit_benign" if still_improving(history) else "overfit"
        return f"{text} {t(lang, key, threshold=OVERFIT_GAP)}"
    if kept["train_accuracy"] < UNDERFIT_TRAIN_ACC:
        return f"{text} {t(lang, 'underfit', threshold=UNDERFIT_TRAIN_ACC)}"
    return f"{text} {t(lang, 'good_fit', threshold=OVERFIT_GAP, under=UNDERFIT_TRAIN_ACC)}"


def still_improving(history: pd.DataFrame) -> bool | None:
    """Whether validation loss fell by more than CONVERGED_DROP in the last epoch."""
    if len(history) < 2:
        return None
    prev, last = history["val_loss"].iloc[-2], history["val_loss"].iloc[-1]
    return bool(last < prev * (1 - CONVERGED_DROP))


def convergence_verdict(history: pd.DataFrame, lang: str = "en") -> str:
    improving = still_improving(history)
    if improving is None:
        return t(lang, "one_epoch")
    prev, last = fmt(history["val_loss"].iloc[-2]), fmt(history["val_loss"].iloc[-1])
    return t(lang, "converging" if improving else "converged", prev=prev, last=last)


def most_confused(confusion: np.ndarray, top: int = 2) -> list[tuple[str, str, int]]:
    """The (true, predicted, count) off-diagonal cells with the most rows, largest first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    cells = sorted(((off[i, j], i, j) for i in range(len(off)) for j in range(len(off))),
                   key=lambda c: (-c[0], c[1], c[2]))
    return [(LABELS[i], LABELS[j], int(n)) for n, i, j in cells[:top] if n > 0]


def confusion_verdict(confusion: np.ndarray, lang: str = "en") -> str | None:
    pairs = most_confused(confusion)
    if not pairs:
        return None
    return t(lang, "confused", pairs="; ".join(
        t(lang, "confused_pair", true=a, pred=b, n=n) for a, b, n in pairs))


def class_verdict(per_class: pd.DataFrame, lang: str = "en") -> str:
    ranked = per_class.sort_values("f1", kind="stable")
    weak, strong = ranked.iloc[0], ranked.iloc[-1]
    return t(lang, "weakest", name=weak["class"], f1=fmt(weak["f1"]), best=strong["class"],
             best_f1=fmt(strong["f1"]))


def calibration_verdict(ece: float, mean_confidence: float, accuracy: float,
                        lang: str = "en") -> str:
    if ece < CALIBRATED_ECE:
        return t(lang, "calibrated", ece=fmt(ece), good=CALIBRATED_ECE)
    direction = "overconfident" if mean_confidence > accuracy else "underconfident"
    return t(lang, "miscalibrated", ece=fmt(ece), good=CALIBRATED_ECE,
             direction=t(lang, direction), conf=fmt(mean_confidence), acc=fmt(accuracy))


COMPARED = ("test_accuracy", "test_f1", "test_loss", "test_ece")


def comparison_verdict(current: dict[str, float], previous: dict | None, lang: str = "en") -> str:
    """Metric deltas against the previous evaluated run of the experiment, if there is one."""
    if not previous:
        return t(lang, "no_previous")
    deltas = [f"{m} {fmt(previous['metrics'][m])} → {fmt(current[m])} "
              f"({signed(current[m] - previous['metrics'][m])})"
              for m in COMPARED if m in current and m in previous["metrics"]]
    return t(lang, "previous", run=previous["run_id"], deltas=", ".join(deltas))

