#!/usr/bin/env python3
"""Operator calls and host syncs per optimiser step of the project's training loop, counted on
the CPU: each computing operator call is at least one kernel launch on a GPU, and each sync
makes the host wait for the GPU, so where a GPU step is small these counts, not the arithmetic,
set its time.

    python benchmarks/step_ops.py --model <model folder> [--data <AG News folder>]

Prints, for `micro_batch_tokens` 512 (auto on a CPU) and 0 and for fp32 and bf16 autocast, the
leaf operator calls per step (those that call no other operator), the share of them that
compute (views, reshapes and allocations launch nothing), and the host syncs Python asks for
(`.item()`, `bool(tensor)`) with where they come from. Run by hand, never in the test suite.
"""
from __future__ import annotations

import argparse
import collections
import traceback
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
# leaf operators that only describe memory: no kernel runs for them on a GPU (`to` and
# `contiguous` are leaves only when they return their input; a real copy calls another operator)
NO_KERNEL = {f"aten::{n}" for n in (
    "to", "contiguous", "view", "as_strided", "empty", "empty_strided", "empty_like", "t",
    "transpose", "unsqueeze",
    "expand", "slice", "select", "reshape", "permute", "detach", "alias", "_unsafe_view",
    "squeeze", "resize_", "lift_fresh", "_reshape_alias", "result_type", "is_nonzero", "item",
    "_local_scalar_dense", "set_", "unbind", "split", "narrow", "chunk", "split_with_sizes")}


def count_syncs(run) -> collections.Counter:
    """Calls of Tensor.item / __bool__ / __float__ during `run()`, keyed by their caller."""
    counts: collections.Counter = collections.Counter()
    saved = {n: getattr(torch.Tensor, n) for n in ("item", "__bool__", "__float__")}

    def counted(name, orig):
        def call(self, *args, **kwargs):
            caller = traceback.extract_stack()[-2]
            counts[f"{name} in {caller.filename.split('site-packages/')[-1]}:{caller.lineno}"] += 1
            return orig(self, *args, **kwargs)
        return call

    for name, orig in saved.items():
        setattr(torch.Tensor, name, counted(name, orig))
    try:
        run()
    finally:
        for name, orig in saved.items():
            setattr(torch.Tensor, name, orig)
    return counts


def main() -> None:
    from agnews.config import DataConfig, TrainConfig
    from agnews.data.sampling import sample_splits
    from agnews.data.sources import load_source
    from agnews.data.tokenized import as_token_rows, encode
    from agnews.model.pretrained import load_classifier, load_tokenizer
    from agnews.training.distributed import Processes
    from agnews.training.loop import TrainState, optimisation, train_epoch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--data", default=str(ROOT / "data" / "ag_news_sample"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    splits = sample_splits(load_source(args.data), DataConfig(data=args.data, train_size=640,
                                                              val_size=50))
    tokenizer = load_tokenizer(args.model)
    train = as_token_rows(encode(tokenizer, splits["train"], 128))
    print(f"model {args.model}; {args.steps} steps of train_batch_size 16 each")
    for micro in (512, 0):
        for precision in ("fp32", "bf16"):
            model = load_classifier(args.model)
            cfg = TrainConfig(model=args.model, epochs=1, max_steps=args.steps,
                              micro_batch_tokens=str(micro), precision=precision)
            opt = optimisation(model, cfg, len(train), Processes())
            state, rng = TrainState(), np.random.default_rng(0)

            def run(cfg=cfg, model=model, opt=opt, state=state, rng=rng):
                train_epoch(model.train(), train, cfg, tokenizer.pad_token_id, opt, state, rng,
                            [], Processes())

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                syncs = count_syncs(run)
            leaves = [e.name for e in prof.events() if e.name.startswith("aten::") and not any(
                c.name.startswith("aten::") for c in e.cpu_children)]
            computing = sum(name not in NO_KERNEL for name in leaves)
            n = state.step
            print(f"\nmicro_batch_tokens={micro} {precision}: {len(leaves) / n:.0f} leaf operator "
                  f"calls per step, {computing / n:.0f} computing; host syncs per step "
                  f"{sum(syncs.values()) / n:.1f}")
            for where, k in syncs.most_common():
                print(f"  {k / n:.1f}  {where}")


if __name__ == "__main__":
    main()
