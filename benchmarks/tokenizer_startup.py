#!/usr/bin/env python3
"""What tokenize pays to load its tokenizer and encode, through `tokenizers` alone or through
transformers, each in a fresh process as the step runs, side by side.

    python benchmarks/tokenizer_startup.py --model <folder or Hub id> [--data data/ag_news_sample]

Runs `--rounds` pairs (the two libraries in turn, so a drifting machine affects both alike),
each a new Python process that imports the library, loads the tokenizer of `--model` and
encodes every text of the data's train and test files truncated to 128 tokens, and prints the
median wall seconds of each and their ratio, with the CPU and whether the ids were equal.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_PROCESS = """
import hashlib, sys, pandas as pd
from agnews.model.pretrained import locate
texts = pd.concat(pd.read_csv(f"{sys.argv[2]}/{s}.csv", header=None) for s in ("train", "test"))
texts = (texts[1] + " " + texts[2]).tolist()
source = locate(sys.argv[3])
if sys.argv[1] == "tokenizers":
    from agnews.model.fast_tokenizer import fast_tokenizer
    tokenizer = fast_tokenizer(source)
    assert tokenizer is not None, "no tokenizers-only path for this model"
else:
    from agnews.model.pretrained import load_tokenizer
    tokenizer = load_tokenizer(source)
ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
print(hashlib.md5(str(ids).encode()).hexdigest())
"""


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def one(library: str, data: str, model: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", ONE_PROCESS, library, data, model], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start, out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=os.environ.get("AGNEWS_DATA",
                                                         str(ROOT / "data" / "ag_news_sample")))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    one("tokenizers", args.data, args.model)  # warm-up: file cache, bytecode
    times: dict[str, list[float]] = {"tokenizers": [], "transformers": []}
    digests = set()
    for _ in range(args.rounds):
        for library in times:
            seconds, digest = one(library, args.data, args.model)
            times[library].append(seconds)
            digests.add(digest)
    fast, slow = (statistics.median(times[k]) for k in ("tokenizers", "transformers"))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; model: {args.model}; data: {args.data}")
    print(f"tokenizers alone: {fast:.2f} s   transformers: {slow:.2f} s   "
          f"ratio {fast / slow:.2f} (median of {args.rounds} pairs, whole processes)")
    print("ids equal:", len(digests) == 1)


if __name__ == "__main__":
    main()
