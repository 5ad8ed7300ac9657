#!/usr/bin/env python3
"""Which epoch each selection rule keeps, and what that costs, on validation sets drawn from
the test rows of a real run.

Reads the per-epoch test probabilities `benchmarks/epoch_accuracy.py --save-probs` wrote. Each
of `--draws` draws takes `--rows` test rows as the validation set (the same distribution as
ingest's validation draw, which is `val_size=200` rows by default) and scores the epoch each
rule keeps on the other test rows:

- `lowest val_loss`: the rule `select_best` followed until 2026-12-06;
- `most accurate`: the highest validation accuracy, a tie to the later epoch;
- `the project's`: the last, unless the most accurate earlier epoch is more often right
  (McNemar, alpha 0.05; `agnews.training.selection`);
- `last`: `select_best=false`.

Then the rule's error rate where no earlier epoch is better, by simulation: `--epochs` epochs
of equal accuracy answering `--rows` rows, each pair disagreeing on about `--disagree` of
them; how often the project's rule keeps an earlier one (95% Clopper-Pearson interval).

    python benchmarks/epoch_selection.py /tmp/probs.npz [--rows 200] [--draws 4000]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agnews.training.selection import rule_per_draw  # noqa: E402  (benchmarks/ is no package)


def rules(right: np.ndarray, loss: np.ndarray) -> dict[str, int]:
    """Epoch (1-based) kept by each rule, from epochs x rows correctness and losses."""
    accuracy = right.mean(axis=1)
    return {"lowest val_loss": int(np.argmin(loss.mean(axis=1))) + 1,
            "most accurate": int(len(accuracy) - np.argmax(accuracy[::-1])),
            "the project's": rule_per_draw(right),
            "last": len(right)}


def on_run(path: str, rows: int, draws: int, rng: np.random.Generator) -> None:
    saved = np.load(path)
    labels = saved["labels"]
    names = sorted((k for k in saved.files if k.startswith("epoch")), key=lambda k: int(k[5:]))
    probs = np.stack([saved[k] for k in names])                       # epochs x rows x 4
    right = probs.argmax(axis=2) == labels
    loss = -np.log(np.clip(probs[:, np.arange(len(labels)), labels], 1e-12, 1.0))
    print(f"{path}: {len(names)} epochs, {len(labels)} test rows; accuracy by epoch "
          + ", ".join(f"{a:.4f}" for a in right.mean(axis=1))
          + "; mean loss " + ", ".join(f"{x:.4f}" for x in loss.mean(axis=1)))
    kept: dict[str, list[tuple[int, float]]] = {}
    for _ in range(draws):
        val = rng.choice(len(labels), rows, replace=False)
        rest = np.setdiff1d(np.arange(len(labels)), val)
        for rule, epoch in rules(right[:, val], loss[:, val]).items():
            kept.setdefault(rule, []).append((epoch, right[epoch - 1, rest].mean()))
    print(f"\n{draws} validation draws of {rows} rows; accuracy on the other rows\n")
    print("| rule | kept epoch 1 / 2 / ... (share of draws) | mean accuracy | 5th percentile |")
    print("|---|---|---|---|")
    for rule, picks in kept.items():
        epochs = np.array([e for e, _ in picks])
        accs = np.array([a for _, a in picks])
        shares = " / ".join(f"{np.mean(epochs == e):.1%}" for e in range(1, len(names) + 1))
        print(f"| {rule} | {shares} | {accs.mean():.4f} | {np.percentile(accs, 5):.4f} |")


def null_rate(epochs: int, rows: int, disagree: float, draws: int,
              rng: np.random.Generator, accuracy: float = 0.9) -> None:
    # Each epoch redraws a share q of the rows' outcomes: equal accuracies, and two epochs
    # disagree on 2 q (1 - q/2) * 2 a (1 - a) of the rows.
    q = 1 - np.sqrt(1 - disagree / (2 * accuracy * (1 - accuracy)))
    wrong = 0
    for _ in range(draws):
        base = rng.random(rows) < accuracy
        redraw = rng.random((epochs, rows)) < q
        right = np.where(redraw, rng.random((epochs, rows)) < accuracy, base)
        wrong += rule_per_draw(right) != epochs
    low, high = proportion_confint(wrong, draws, alpha=0.05, method="beta")
    print(f"| {epochs} | {rows} | {disagree:.0%} | {wrong / draws:.2%} ({low:.2%}-{high:.2%}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probs", nargs="*", help=".npz files of epoch_accuracy.py --save-probs")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for path in args.probs:
        on_run(path, args.rows, args.draws, rng)
    print("\nEpochs of equal accuracy: how often the project's rule keeps an earlier one\n")
    print("| epochs | validation rows | pairs disagree on | kept an earlier epoch (95% CI) |")
    print("|---|---|---|---|")
    for epochs in (2, 3, 4):
        for rows, disagree in ((200, 0.05), (200, 0.10), (1000, 0.05)):
            null_rate(epochs, rows, disagree, args.draws, rng)


if __name__ == "__main__":
    main()
