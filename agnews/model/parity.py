"""The parity gate: may a faster runtime score in place of the PyTorch model?

A variant (ONNX Runtime fp32 or int8, OpenVINO) passes when it predicts the same class as
PyTorch on at least `MIN_AGREEMENT` of the rows, as the one-sided 95% lower bound of the
agreement (Wilson) shows, and a paired test cannot tell that it is right less often: McNemar's
exact one-sided test on the test rows where exactly one of the two is right (the test `register`
promotes with), at `ALPHA`. Agreement needs no labels, so train judges it on the val and test
rows (700 by default, at most `MOST_ROWS` of them) and accuracy on the test rows among them. The
bound, not the point estimate, because on a few hundred rows a point estimate often clears the
floor for a runtime that truly falls short of it (docs/performance.md measures both rules' error
rates). Of the variants that pass, the one with the most rows per second scores. Choosing for
itself, train stops a variant's pass once it has disagreed on more rows than the bound allows
(`most_disagreements`): the gate's verdict is then already no.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from agnews.evaluation.intervals import wilson
from agnews.registry.paired import Paired, mcnemar_better

MIN_AGREEMENT = 0.995
ALPHA = 0.05
BOUND_LEVEL = 0.90  # the two-sided level whose lower end is the one-sided 95% bound
# At most this many rows are judged (drawn at random from val and test): enough for the bound
# to pass a runtime that truly agrees on 99.96% (bf16 kernels other than PyTorch's) in every
# measured draw, where 1,000 rows (one disagreement allowed) refused it in one draw in 23, while
# each runtime's pass stays a few seconds whatever the size of the test split
# (docs/performance.md).
MOST_ROWS = 2000
REFERENCE = "pytorch"


@dataclass(frozen=True)
class Trial:
    """One runtime scored on the test rows, against PyTorch's answers on the same rows."""

    name: str
    rows: int
    rows_per_second: float
    agreement: float
    agreement_low: float      # the one-sided 95% lower bound the gate compares
    agreement_high: float
    accuracy: float
    only_pytorch_right: int   # rows PyTorch gets right and this variant wrong
    only_variant_right: int
    p_worse: float            # McNemar, one-sided: "PyTorch is more often right"
    passed: bool
    why: str
    judged: bool = True       # False: stopped before its last row (`slower`, `disagreeing`)

    def metrics(self) -> dict[str, float]:
        key = self.name.replace("-", "_")
        return {f"parity_{key}_{k}": float(v) for k, v in asdict(self).items()
                if k in ("rows_per_second", "agreement", "agreement_low", "agreement_high",
                         "accuracy", "p_worse") and not np.isnan(v)}


def judge(name: str, reference: np.ndarray, probs: np.ndarray, labels: np.ndarray,
          seconds: float, min_agreement: float = MIN_AGREEMENT, alpha: float = ALPHA) -> Trial:
    """The gate's verdict on `probs` (a variant's class probabilities) against `reference`
    (PyTorch's) for the same rows, scored in `seconds`; `labels` holds each row's true class,
    or -1 for a row that only counts for agreement."""
    ref_pred, pred = reference.argmax(axis=1), probs.argmax(axis=1)
    rows = int(len(pred))
    same = int((ref_pred == pred).sum())
    low, high = wilson(same, rows, BOUND_LEVEL) if rows else (0.0, 0.0)
    test = labels >= 0
    table = Paired.of(ref_pred[test] == labels[test], pred[test] == labels[test])
    p_worse = mcnemar_better(table)
    agreement = same / rows if rows else 0.0
    if low < min_agreement:
        passed, why = False, (f"agrees with PyTorch on {agreement:.2%} of {rows} rows, at least "
                              f"{low:.2%} (one-sided 95% bound), not surely {min_agreement:.1%}")
    elif p_worse < alpha:
        passed, why = False, (f"right less often than PyTorch (McNemar p = {p_worse:.3g} < "
                              f"{alpha})")
    else:
        passed, why = True, (f"agrees on {agreement:.2%} of {rows} rows (at least {low:.2%}); "
                             f"McNemar p = {p_worse:.3g} on {table.rows} test rows")
    return Trial(name, rows, rows / seconds if seconds > 0 else float("inf"), agreement, low,
                 high, float((pred[test] == labels[test]).mean()) if test.any() else 0.0,
                 table.only_candidate, table.only_champion, p_worse, passed, why)


def slower(name: str, rows: int, scored: int, seconds: float, reference_seconds: float,
           projected: float | None = None) -> Trial:
    """A variant stopped when PyTorch's time for all `rows` ran out, `scored` of them done, or
    sooner, when its pace was on course for `projected` seconds, well past PyTorch's: it could
    only end slower, so it is not judged (the gate takes the fastest that passes)."""
    nan = float("nan")
    if projected is None:
        why = (f"slower than PyTorch: {scored} of {rows} rows scored when PyTorch's "
               f"{reference_seconds:.1f} s for all of them had passed; not judged")
    else:
        why = (f"slower than PyTorch: on course for {projected:.1f} s for all {rows} rows "
               f"after {scored} of them ({seconds:.1f} s), against PyTorch's "
               f"{reference_seconds:.1f} s; not judged")
    return Trial(name, rows, nan, nan, nan, nan, nan, 0, 0, nan, False, why, False)


def most_disagreements(rows: int, min_agreement: float = MIN_AGREEMENT) -> int:
    """The most of `rows` rows a variant may disagree with PyTorch on and still clear the
    agreement bound (-1: not even full agreement does). The bound only falls as disagreements
    grow, so a variant past this count fails the gate whatever its other rows."""
    most = -1
    while most + 1 <= rows and wilson(rows - most - 1, rows, BOUND_LEVEL)[0] >= min_agreement:
        most += 1
    return most


def disagreeing(name: str, rows: int, scored: int, disagreements: int,
                min_agreement: float = MIN_AGREEMENT) -> Trial:
    """A variant stopped after `scored` of `rows` rows, having disagreed with PyTorch on
    `disagreements` of them: more than `most_disagreements(rows)`, so it had already failed
    the gate, and scoring the rest would only cost train the time."""
    nan = float("nan")
    best = (rows - disagreements) / rows
    return Trial(name, rows, nan, nan, nan, nan, nan, 0, 0, nan, False,
                 f"disagreed with PyTorch on {disagreements} of the first {scored} of {rows} "
                 f"rows: at best {best:.2%} agreement, whose bound cannot show "
                 f"{min_agreement:.1%}; stopped there, failed", False)


def unavailable(name: str, rows: int, error: str) -> Trial:
    """A variant that could not score at all (its runtime missing or refusing the graph): not
    judged, and the others go on without it."""
    nan = float("nan")
    return Trial(name, rows, nan, nan, nan, nan, nan, 0, 0, nan, False,
                 f"did not score ({error})", False)


def gate_rows(val_rows: int, test_labels: np.ndarray, seed: int, most: int = MOST_ROWS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of val then test (one after the other) the gate judges, and their labels (-1
    for a val row): all of them, or `most` drawn with `seed`, so a rerun judges the same rows."""
    labels = np.concatenate([np.full(val_rows, -1), np.asarray(test_labels)]).astype(int)
    keep = np.arange(len(labels))
    if len(labels) > most:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), most, replace=False))
    return keep, labels[keep]


def gate_sample(val, test, seed: int) -> tuple[list, np.ndarray]:
    """The token ids of the rows `gate_rows` draws from `val` then `test` (tokenized rows, as
    tokenize writes them), and their labels (-1 for a val row)."""
    keep, labels = gate_rows(len(val), test.labels, seed)
    first = len(val)
    return val.take(keep[keep < first]) + test.take(keep[keep >= first] - first), labels


def choose(trials: list[Trial], asked: str = "auto") -> tuple[str, str]:
    """The runtime to score with, and why: `asked` where it is not auto (even if it failed the
    gate: the user's call, said in the reason), else the fastest that passed."""
    by_name = {t.name: t for t in trials}
    if asked != "auto":
        trial = by_name[asked]
        verdict = "passed" if trial.passed else "FAILED"
        return asked, f"asked for with -P scorer={asked}; it {verdict} the parity gate " \
                      f"({trial.why})"
    passing = [t for t in trials if t.passed]
    best = max(passing, key=lambda t: t.rows_per_second)
    others = "; ".join(f"{t.name} {t.why}" if not t.judged else
                       f"{t.name} {t.rows_per_second:.0f} rows/s"
                       + ("" if t.passed else f", failed: {t.why}")
                       for t in trials if t is not best)
    return best.name, (f"the fastest that passed the parity gate, {best.rows_per_second:.0f} "
                       f"rows/s" + (f" (vs {others})" if others else "")
                       + ("" if best.name == REFERENCE else f"; it {best.why}"))


def rows_needed(min_agreement: float = MIN_AGREEMENT) -> int:
    """The fewest rows on which even perfect agreement clears the gate's bound: with fewer, no
    runtime but PyTorch can pass, and train does not export at all."""
    rows = 1
    while wilson(rows, rows, BOUND_LEVEL)[0] < min_agreement:
        rows = rows * 2 if rows < 256 else rows + 1
    return rows
