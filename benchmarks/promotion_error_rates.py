#!/usr/bin/env python3
"""How often the register step's promotion decision is wrong, by simulation.

Two models answer the same test rows; each draw is one paired table (both right, only the
candidate right, only the champion right, both wrong), multinomial on the rows. For each test
size and share of rows the two disagree on, `--draws` times:

- equal models: how often the candidate takes @champion under `promote=better` (McNemar) and
  under the old rule "higher accuracy wins": a false promotion;
- a candidate exactly `--margin` worse: how often `promote=not_worse` (Tango) promotes it;
- power: how often a candidate 2 points better (`better`), or as good (`not_worse`), is promoted.

The decisions are the step's own (`agnews.registry.policy.decide`). Prints one table with 95%
Clopper-Pearson intervals. Runs in seconds; no model or data needed.

    python benchmarks/promotion_error_rates.py [--draws 4000] [--alpha 0.05] [--margin 0.01]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agnews.config import RegisterConfig  # noqa: E402  (benchmarks/ is no package)
from agnews.registry.paired import Paired  # noqa: E402
from agnews.registry.policy import decide  # noqa: E402

ROWS = (200, 500, 2000, 7600)
DISAGREE = (0.05, 0.10, 0.20)
CHAMPION_ACCURACY = 0.88


def tables(rng, rows: int, difference: float, disagree: float, draws: int) -> list[Paired]:
    only_candidate, only_champion = (disagree + difference) / 2, (disagree - difference) / 2
    both = CHAMPION_ACCURACY - only_champion
    cells = rng.multinomial(rows, [both, only_candidate, only_champion,
                                   1 - both - only_candidate - only_champion], size=draws)
    return [Paired(rows, int(c[0] + c[1]), int(c[0] + c[2]), int(c[1]), int(c[2]))
            for c in cells]


def rate(hits: int, draws: int) -> str:
    low, high = proportion_confint(hits, draws, alpha=0.05, method="beta")
    return f"{hits / draws:6.1%} [{low:.1%}, {high:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    better = RegisterConfig(promote_alpha=args.alpha)
    not_worse = RegisterConfig(promote="not_worse", promote_alpha=args.alpha,
                               promote_margin=args.margin)

    def promoted(cfg, difference, rows, disagree) -> int:
        return sum(decide(t, "1", cfg).alias == "champion"
                   for t in tables(rng, rows, difference, disagree, args.draws))

    print(f"{args.draws} draws per cell, alpha {args.alpha}, margin {args.margin}, champion "
          f"accuracy {CHAMPION_ACCURACY}; 95% Clopper-Pearson intervals")
    print("| rows | disagree | equal: 'higher wins' | equal: better | worse by margin: "
          "not_worse | +2 pts: better | equal: not_worse |")
    print("|---|---|---|---|---|---|---|")
    for rows in ROWS:
        for disagree in DISAGREE:
            equal = tables(rng, rows, 0.0, disagree, args.draws)
            higher = sum(t.only_candidate > t.only_champion for t in equal)
            wrong = sum(decide(t, "1", better).alias == "champion" for t in equal)
            print(f"| {rows} | {disagree:.0%} | {rate(higher, args.draws)} | "
                  f"{rate(wrong, args.draws)} | "
                  f"{rate(promoted(not_worse, -args.margin, rows, disagree), args.draws)} | "
                  f"{rate(promoted(better, 0.02, rows, disagree), args.draws)} | "
                  f"{rate(promoted(not_worse, 0.0, rows, disagree), args.draws)} |", flush=True)


if __name__ == "__main__":
    main()
