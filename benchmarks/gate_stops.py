#!/usr/bin/env python3
"""What stopping a variant that disagrees too often saves train's parity gate.

Loads a train run's model and its tokenize run's rows, draws the rows the gate judges as train
does, then calls `pick_runtime` (auto) in pairs, in alternating order: as train calls it, and
with the disagreement stop turned off (`most_disagreements` answering None, so every variant
that is not slower than PyTorch scores every row). Prints each call's seconds, the ratio, the
choice and the reasons, so the choice can be seen not to change.

    python benchmarks/gate_stops.py --tokenized runs:/<tokenize run>/tokenized \\
        --model-uri runs:/<train run>/model --pairs 4

Run by hand against the tracking store that holds the runs (MLFLOW_TRACKING_URI), a minute or
two a pair; never in the test suite.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenized", required=True)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42, help="the train run's seed")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from agnews.data.tokenized import read_tokenized
    from agnews.model import onnx_export
    from agnews.model.logged_model import load_logged_classifier
    from agnews.model.parity import gate_sample
    from agnews.tracking.lineage import cpu_model
    from agnews.tracking.runs import fetch

    splits, meta = read_tokenized(fetch(args.tokenized, "tokenized", "tokenize"))
    runtime = load_logged_classifier(args.model_uri, "auto").runtime
    ids, labels = gate_sample(splits["val"], splits["test"], args.seed)
    stopping = onnx_export.most_disagreements

    def gate(stop: bool):
        onnx_export.most_disagreements = stopping if stop else (lambda rows: None)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            choice = onnx_export.pick_runtime(runtime.model, runtime.precision, ids, labels,
                                              meta["pad_token_id"], args.batch_size, Path(tmp))
            return time.perf_counter() - start, choice

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model_uri}; "
          f"{len(ids)} rows judged; scoring precision {runtime.precision.score}")
    ratios = []
    for pair in range(args.pairs + 1):
        order = (True, False) if pair % 2 == 0 else (False, True)
        done = {stop: gate(stop) for stop in order}
        (on, with_stop), (off, without) = done[True], done[False]
        label = "warm-up" if pair == 0 else f"pair {pair}"
        if pair:
            ratios.append(on / off)
        print(f"{label}: stopping {on:.1f} s, not stopping {off:.1f} s, ratio {on / off:.2f}; "
              f"chose {with_stop.scorer} / {without.scorer}", flush=True)
        print(f"    stopping: {with_stop.reason}\n    not stopping: {without.reason}", flush=True)
    if ratios:
        print(f"median ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}-"
              f"{max(ratios):.2f}) over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
