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
    verdict: str = ""   # better | indistinguishable | worse | not_worse | could_be_worse


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
    stays = f"so it becomes challenger and version {champion_version} stays champion"
    if cfg.promote == "better":
        test, p = "McNemar exact, one-sided", mcnemar_better(table)
        said = f"McNemar's exact one-sided test gives p = {p:.3g}"
        # The same test the other way round tells "the champion is better" from "no telling".
        reverse = mcnemar_better(Paired(table.rows, table.champion_right, table.candidate_right,
                                        table.only_champion, table.only_candidate))
        if p < alpha:
            verdict, won = "better", (f"{said} < {alpha:g}: the candidate is better, and becomes "
                                      "champion")
        elif reverse < alpha:
            verdict, won = "worse", (f"{said} >= {alpha:g}, and the reverse test {reverse:.3g}: "
                                     f"the champion is better, {stays}")
        else:
            verdict, won = "indistinguishable", (f"{said} >= {alpha:g}: the two could not be "
                                                 f"told apart, {stays}")
    else:
        test, p = f"Tango score, one-sided, margin {margin:g}", tango_not_worse(table, margin)
        said = (f"Tango's one-sided score test of a loss of {margin * 100:g} points or more "
                f"gives p = {p:.3g}")
        if p < alpha:
            verdict, won = "not_worse", (f"{said} < {alpha:g}: the candidate is not worse by "
                                         "more than the margin, and becomes champion")
        else:
            verdict, won = "could_be_worse", (f"{said} >= {alpha:g}: it could be worse by more "
                                              f"than the margin, {stays}")
    promoted = p < alpha
    alias = CHAMPION if promoted else CHALLENGER
    return Decision(alias, alias, f"{facts}. {won}", test, p, verdict)
