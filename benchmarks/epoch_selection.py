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

`--trials` asks the same of a sweep's ranking: each `file.npz:epochN` (the last epoch without
`:epochN`) stands for one trial's kept model, and each draw ranks them as the sweep does (lowest
val_loss) and by validation accuracy (a tie to the lower loss), scoring the pick on the other rows.

    python benchmarks/epoch_selection.py /tmp/probs.npz [--rows 200] [--draws 4000]
    python benchmarks/epoch_selection.py --trials a.npz b.npz:epoch3 c.npz [--rows 200]
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


def load(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Epoch names, epochs x rows correctness and cross-entropy of one saved run."""
    saved = np.load(path)
    labels = saved["labels"]
    names = sorted((k for k in saved.files if k.startswith("epoch")), key=lambda k: int(k[5:]))
    probs = np.stack([saved[k] for k in names])                       # epochs x rows x 4
    right = probs.argmax(axis=2) == labels
    return names, right, -np.log(np.clip(probs[:, np.arange(len(labels)), labels], 1e-12, 1.0))


def on_run(path: str, rows: int, draws: int, rng: np.random.Generator) -> None:
    names, right, loss = load(path)
    n = right.shape[1]
    print(f"{path}: {len(names)} epochs, {n} test rows; accuracy by epoch "
          + ", ".join(f"{a:.4f}" for a in right.mean(axis=1))
          + "; mean loss " + ", ".join(f"{x:.4f}" for x in loss.mean(axis=1)))
    kept: dict[str, list[tuple[int, float]]] = {}
    for _ in range(draws):
        val = rng.choice(n, rows, replace=False)
        rest = np.setdiff1d(np.arange(n), val)
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


def on_trials(specs: list[str], rows: int, draws: int, rng: np.random.Generator) -> None:
    """How often ranking trials by val_loss, or by validation accuracy, picks each of them."""
    right, loss, labels = [], [], None
    for spec in specs:
        path, _, epoch = spec.rpartition(":") if ":epoch" in spec else (spec, "", "")
        names, r, x = load(path)
        if epoch and epoch not in names:
            sys.exit(f"benchmark: {path} has no {epoch}: it has {', '.join(names)}")
        these = np.load(path)["labels"]
        if labels is not None and not np.array_equal(labels, these):
            sys.exit(f"benchmark: {path} scored other test rows than {specs[0]}: rank runs "
                     "scored on the same test rows")
        labels = these
        i = names.index(epoch) if epoch else len(names) - 1
        right.append(r[i])
        loss.append(x[i])
    right, loss = np.stack(right), np.stack(loss)
    print("| trial | accuracy, all rows | mean loss |\n|---|---|---|")
    for spec, r, x in zip(specs, right, loss, strict=True):
        print(f"| {spec} | {r.mean():.4f} | {x.mean():.4f} |")
    picked: dict[str, list[tuple[int, float]]] = {"lowest val_loss (the sweep's)": [],
                                                  "most accurate": []}
    n = right.shape[1]
    for _ in range(draws):
        val = rng.choice(n, rows, replace=False)
        rest = np.setdiff1d(np.arange(n), val)
        mean_loss = loss[:, val].mean(axis=1)
        by_accuracy = np.lexsort((mean_loss, -right[:, val].mean(axis=1)))[0]
        for rule, i in zip(picked, (int(np.argmin(mean_loss)), int(by_accuracy)), strict=True):
            picked[rule].append((i, right[i, rest].mean()))
    print(f"\n{draws} validation draws of {rows} rows; the pick's accuracy on the other rows\n")
    print("| ranking | each trial picked (share of draws, in the order above) | mean accuracy "
          "| 5th percentile |\n|---|---|---|---|")
    for rule, picks in picked.items():
        which = np.array([i for i, _ in picks])
        accs = np.array([a for _, a in picks])
        shares = " / ".join(f"{np.mean(which == i):.1%}" for i in range(len(specs)))
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
    parser.add_argument("--trials", nargs="+", default=[],
                        help="rank these saved models as a sweep ranks its trials instead")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.trials:
        on_trials(args.trials, args.rows, args.draws, rng)
        return
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
