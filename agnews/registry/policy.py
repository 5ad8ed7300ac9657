"""The promotion policy of the register step, as pure functions tested with crafted numbers:
the gate a model must pass to be registered, and whether a new version takes the champion's
alias or becomes the challenger."""
from __future__ import annotations

from dataclasses import dataclass

from agnews.config import RegisterConfig

CHAMPION, CHALLENGER = "champion", "challenger"


def gate_failures(metrics: dict[str, float], cfg: RegisterConfig) -> list[str]:
    """Why the model may not be registered: one line per threshold it misses (empty = pass)."""
    out = []
    for name, floor in (("test_accuracy", cfg.min_test_accuracy), ("test_f1", cfg.min_test_f1)):
        if name not in metrics:
            out.append(f"{name} was not logged by the evaluate run")
        elif metrics[name] < floor:
            out.append(f"{name} {metrics[name]:.4f} < min_{name} {floor:.2f}")
    return out


@dataclass(frozen=True)
class Decision:
    outcome: str        # first | champion (beat the champion) | challenger
    alias: str          # the alias the new version gets
    reason: str         # one sentence, for the console and the run


def decide(candidate_f1: float, champion_f1: float | None,
           champion_version: str | None = None) -> Decision:
    """The new version becomes champion if there is none or if it scores a higher F1 on the
    same rows; a tie keeps the champion (a new version must earn the alias)."""
    if champion_f1 is None:
        return Decision("first", CHAMPION, "first version to pass the gate: it becomes champion")
    if candidate_f1 > champion_f1:
        return Decision(CHAMPION, CHAMPION, f"test_f1 {candidate_f1:.4f} beats champion version "
                                  f"{champion_version} ({champion_f1:.4f}) on the same test rows")
    return Decision(CHALLENGER, CHALLENGER,
                    f"test_f1 {candidate_f1:.4f} does not beat champion version "
                                f"{champion_version} ({champion_f1:.4f}) on the same test rows")
