#!/usr/bin/env python3
"""How well a variant's first batches foretell its whole pass, and what stopping on that saves.

Train's parity gate stops an ONNX variant whose pace, after `PROJECT_AFTER` batches, is on course
for more than PyTorch's time by `PROJECTION_MARGIN` (`agnews.model.onnx_trial.Watch`). This
loads a train run's model and its tokenize run's rows, draws the rows the gate judges as train
does, exports and quantizes the model as train does, and scores those rows with each ONNX
variant `--rounds` times, noting the time after every batch. It prints, for batches 1 to 6, how
far the projection (seconds so far, scaled by the padded tokens still to score) overshot the
pass's real time: the margin must stay above the worst of these, or a variant that would have
finished in time could be stopped.

With `--pairs N` it then times `pick_runtime` as train calls it, N pairs in alternating order
after a warm-up pair, each call in a fresh process: this checkout against the checkout given
with `--against` (the commit before a change, e.g. `git worktree add ../before <commit>`), and
prints each call's seconds, its choice and the ratio.

    python benchmarks/gate_pace.py --tokenized runs:/<tokenize run>/tokenized \\
        --model-uri runs:/<train run>/model --rounds 3 --pairs 4 --against ../before

Run by hand against the tracking store that holds the runs (MLFLOW_TRACKING_URI); a minute or
two, and half a minute a call for the pairs; never in the test suite.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One call of the gate, run in a fresh process with `project` first on the path.
GATE = """
import sys, tempfile, time
from pathlib import Path
project, tokenized, model_uri, seed, batch = sys.argv[1:6]
sys.path.insert(0, project)
import mlflow
from agnews.cli import quiet_libraries
from agnews.data.tokenized import read_tokenized
from agnews.model.onnx_export import pick_runtime
from agnews.model.parity import gate_sample
from agnews.model.precision import choose_precision
from agnews.model.runtimes import open_classifier
from agnews.tracking.runs import fetch
quiet_libraries()
splits, meta = read_tokenized(fetch(tokenized, "tokenized", "tokenize"))
local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
model = open_classifier(local / "artifacts" / "classifier", None, "pytorch", 128).runtime.model
ids, labels = gate_sample(splits["val"], splits["test"], int(seed))
precision = choose_precision("auto", model)
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    choice = pick_runtime(model, precision, ids, labels, meta["pad_token_id"], int(batch),
                          Path(tmp))
    print(f"GATE {time.perf_counter() - start:.3f} {choice.scorer} | {choice.reason}")
"""


class Clock:
    """The seconds since it was made, noted after each batch."""

    def __init__(self):
        self.start, self.times = time.perf_counter(), []

    def batch(self, idx, logits) -> None:
        self.times.append(time.perf_counter() - self.start)


def overshoots(args) -> None:
    import mlflow

    from agnews.data.tokenized import read_tokenized
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import (
        PROJECT_AFTER,
        PROJECTION_MARGIN,
        padded_tokens,
        quantize_int8,
    )
    from agnews.model.padding import lengths_of
    from agnews.model.parity import gate_sample
    from agnews.model.runtimes import OnnxRuntime, onnx_session, open_classifier
    from agnews.tracking.lineage import cpu_model
    from agnews.tracking.runs import fetch

    splits, meta = read_tokenized(fetch(args.tokenized, "tokenized", "tokenize"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=args.model_uri))
    model = open_classifier(local / "artifacts" / "classifier", None, "pytorch",
                            128).runtime.model
    ids, _ = gate_sample(splits["val"], splits["test"], args.seed)
    ids = [np.asarray(s) for s in ids]
    pad = meta["pad_token_id"]
    ordered = np.sort(lengths_of(ids))[::-1]
    batches = [padded_tokens(ordered[i:i + args.batch_size])
               for i in range(0, len(ordered), args.batch_size)]
    done = np.cumsum(batches)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model_uri}; {len(ids)} "
          f"rows judged in {len(batches)} batches of {args.batch_size}; the gate projects "
          f"after {PROJECT_AFTER} batches with a margin of {PROJECTION_MARGIN:.0%}")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "model.onnx")
        graphs = {"onnx": fp32, "onnx-int8": quantize_int8(fp32, Path(tmp) / "int8.onnx")}
        print("| variant | round | seconds | projected / real after batch 1 | 2 | 3 | 4 | 5 "
              "| 6 |\n|---|---|---|---|---|---|---|---|---|")
        worst = np.zeros(6)
        for name, path in graphs.items():
            runtime = OnnxRuntime(onnx_session(path), name)
            for round_ in range(1, args.rounds + 1):
                runtime.logits(ids[:args.batch_size], args.batch_size, pad)  # as the gate warms
                clock = Clock()
                runtime.logits(ids, args.batch_size, pad, on_batch=clock.batch)
                times = clock.times
                real = times[-1]
                ratios = [times[k] * done[-1] / done[k] / real for k in range(min(6, len(times)))]
                worst[:len(ratios)] = np.maximum(worst[:len(ratios)], ratios)
                print(f"| {name} | {round_} | {real:.2f} | "
                      + " | ".join(f"{r:.2f}" for r in ratios) + " |", flush=True)
        print("| worst | | | " + " | ".join(f"{w:.2f}" for w in worst) + " |")


def pairs(args) -> None:
    def call(project: Path) -> tuple[float, str, str]:
        out = subprocess.run([sys.executable, "-c", GATE, str(project), args.tokenized,
                              args.model_uri, str(args.seed), str(args.batch_size)],
                             capture_output=True, text=True, cwd=project)
        line = next((x for x in out.stdout.splitlines() if x.startswith("GATE ")), None)
        if line is None:
            sys.exit(f"benchmark: the gate failed in {project}:\n{out.stderr[-2000:]}")
        seconds, scorer, reason = line[5:].split(" ", 2)
        return float(seconds), scorer, reason.removeprefix("| ")

    ratios = []
    for pair in range(args.pairs + 1):
        order = (ROOT, args.against) if pair % 2 == 0 else (args.against, ROOT)
        result = {project: call(project) for project in order}
        (new, new_choice, new_reason), (old, old_choice, _) = result[ROOT], result[args.against]
        label = "warm-up" if pair == 0 else f"pair {pair}"
        if pair:
            ratios.append(new / old)
        print(f"{label}: this checkout {new:.1f} s, {args.against} {old:.1f} s, ratio "
              f"{new / old:.2f}; chose {new_choice} / {old_choice}\n    {new_reason}", flush=True)
    if ratios:
        print(f"median ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}-"
              f"{max(ratios):.2f}) over {len(ratios)} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenized", required=True)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=0)
    parser.add_argument("--against", type=Path, help="another checkout, for --pairs")
    parser.add_argument("--seed", type=int, default=42, help="the train run's seed")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.pairs and args.against is None:
        parser.error("--pairs needs --against <another checkout>")

    from agnews.cli import quiet_libraries

    quiet_libraries()
    if args.rounds:
        overshoots(args)
    if args.pairs:
        args.against = args.against.resolve()
        pairs(args)


if __name__ == "__main__":
    main()
