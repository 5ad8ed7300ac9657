"""The promotion policy of the register step, as pure functions tested with crafted numbers:
the gate a model must pass to be registered, and whether a new version takes the champion's
alias or becomes the challenger."""
from __future__ import annotations

from dataclasses import dataclass

from agnews.config import RegisterConfig
from agnews.evaluation.intervals import wilson
from agnews.registry.paired import Paired, mcnemar_better, tango_not_worse

CHAMPION, CHALLENGER = "champion", "challenger"
GATED = ("test_accuracy", "test_f1")


def gate_failures(metrics: dict[str, float], cfg: RegisterConfig) -> list[str]:
    """Why the model may not be registered: one line per threshold it misses (empty = pass).
    With `gate_on=lower_bound` the low end of each metric's 95% interval must reach the floor:
    a model that clears it by luck on few rows does not pass."""
    out = []
    suffix = "_ci_low" if cfg.gate_on == "lower_bound" else ""
    for name, floor in zip(GATED, (cfg.min_test_accuracy, cfg.min_test_f1), strict=True):
        key = name + suffix
        if key not in metrics:
            out.append(f"{key} was not logged by the evaluate run"
                       + (": evaluate it again, or -P gate_on=point" if suffix else ""))
        elif metrics[key] < floor:
            out.append(f"{key} {metrics[key]:.4f} < min_{name} {floor:.2f}")
    return out


@dataclass(frozen=True)
class Decision:
    outcome: str        # first | champion (beat the champion) | challenger
    alias: str          # the alias the new version gets
    reason: str         # in words a reviewer understands, for the console, the run and report
    test: str = ""      # the paired test that decided ("" for the first version)
    p: float | None = None


def _accuracy(right: int, rows: int) -> str:
    low, high = wilson(right, rows)
    return f"{right / rows:.4f} (95% CI {low:.4f}-{high:.4f})"


def decide(table: Paired | None, champion_version: str | None, cfg: RegisterConfig) -> Decision:
    """The new version becomes champion if there is none, or if the paired test on the same
    test rows says it is better (`promote=better`) or not worse by more than the margin
    (`promote=not_worse`) at `promote_alpha`; otherwise it becomes challenger."""
    if table is None:
        return Decision("first", CHAMPION, "first version to pass the gate: it becomes champion")
    alpha, margin = cfg.promote_alpha, cfg.promote_margin
    facts = (f"on the same {table.rows} test rows the candidate's accuracy is "
             f"{_accuracy(table.candidate_right, table.rows)} and champion version "
             f"{champion_version}'s {_accuracy(table.champion_right, table.rows)}; they disagree "
             f"on {table.only_candidate + table.only_champion} rows, the candidate right on "
             f"{table.only_candidate} and the champion on {table.only_champion}")
    if cfg.promote == "better":
        test, p = "McNemar exact, one-sided", mcnemar_better(table)
        verdict = (f"McNemar's exact one-sided test gives p = {p:.3g}")
        if p < alpha:
            won = f"{verdict} < {alpha:g}: the candidate is better, and becomes champion"
        elif table.only_candidate > table.only_champion:
            won = (f"{verdict} >= {alpha:g}: the two could not be told apart, so the candidate "
                   f"becomes challenger and version {champion_version} stays champion")
        else:
            won = (f"{verdict} >= {alpha:g}: the candidate is not more often right, so it "
                   f"becomes challenger and version {champion_version} stays champion")
    else:
        test, p = f"Tango score, one-sided, margin {margin:g}", tango_not_worse(table, margin)
        verdict = (f"Tango's one-sided score test of a loss of {margin * 100:g} points or more "
                   f"gives p = {p:.3g}")
        if p < alpha:
            won = (f"{verdict} < {alpha:g}: the candidate is not worse by more than the margin, "
                   "and becomes champion")
        else:
            won = (f"{verdict} >= {alpha:g}: it could be worse by more than the margin, so it "
                   f"becomes challenger and version {champion_version} stays champion")
    promoted = p < alpha
    return Decision(CHAMPION if promoted else CHALLENGER, CHAMPION if promoted else CHALLENGER,
                    f"{facts}. {won}", test, p)
