"""Step 3, train: fine-tune the pretrained model as a 4-class sequence classifier.

Reads: `tokenized` (the `tokenized/` artifact of a tokenize run) and `tokenizer` (its
`tokenizer/` artifact), plus the pretrained `model`.
Writes: per epoch (MLflow `step` = epoch number) `train_loss`, `train_accuracy`, `train_f1`,
`train_precision`, `train_recall`, the same five for `val_`, and `train_running_loss`
(the mean loss of the epoch's optimiser steps); plots `plots/loss_curves.png` and
`plots/metric_evolution.png`; and the fine-tuned model as an MLflow transformers model
named `model` (task text-classification, with signature and input example).

`train_*` metrics are measured after each epoch, in eval mode, on the training rows, so they
compare like for like with `val_*`: the gap between the two is the overfitting signal.
"""
from __future__ import annotations

import random
import sys
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import TrainConfig
from steps.metrics import classification_metrics
from steps.modeling import batches, predict_logits, softmax

EpochCallback = Callable[[int, dict[str, float]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def score(model, df: pd.DataFrame, batch_size: int, pad_id: int) -> dict[str, float]:
    """Loss, accuracy, F1, precision and recall of `model` on tokenized rows."""
    probs = softmax(predict_logits(model, df["input_ids"].tolist(), batch_size, pad_id))
    return classification_metrics(df["label"].to_numpy(), probs)


def train_epoch(model, optimizer, scheduler, df: pd.DataFrame, batch_size: int, pad_id: int,
                rng: np.random.Generator) -> float:
    """One shuffled pass over `df`; returns the mean loss of its optimiser steps."""
    model.train()
    seqs, labels = df["input_ids"].tolist(), torch.tensor(df["label"].to_numpy())
    losses = []
    for idx, ids, mask in batches(seqs, batch_size, pad_id, rng.permutation(len(seqs))):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels[idx]).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return float(np.mean(losses))


def fit(model, train_df: pd.DataFrame, val_df: pd.DataFrame, cfg: TrainConfig, pad_id: int,
        on_epoch: EpochCallback | None = None) -> list[dict[str, float]]:
    """Fine-tune with AdamW and a linear decay to zero; one history row per epoch.

    `on_epoch(epoch, row)` is called as each epoch ends, so the caller can log while
    training runs rather than after it.
    """
    from transformers import get_linear_schedule_with_warmup

    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    steps_per_epoch = -(-len(train_df) // cfg.train_batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps_per_epoch * cfg.epochs)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        running = train_epoch(model, optimizer, scheduler, train_df, cfg.train_batch_size,
                              pad_id, rng)
        seconds = time.perf_counter() - start
        row = {"train_running_loss": running, "epoch_seconds": seconds,
               "train_samples_per_second": len(train_df) / seconds}
        for split, df in (("train", train_df), ("val", val_df)):
            row.update({f"{split}_{k}": v
                        for k, v in score(model, df, cfg.eval_batch_size, pad_id).items()})
        history.append(row)
        if on_epoch:
            on_epoch(epoch, row)
    return history


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("train", argv, [TrainConfig], {
        "tokenized": "tokenized/ artifact of a tokenize run: runs:/<id>/tokenized",
        "tokenizer": "tokenizer/ artifact of a tokenize run: runs:/<id>/tokenizer"})
    import mlflow
    from transformers import AutoTokenizer

    from steps.model_logging import log_classifier
    from steps.modeling import load_classifier
    from steps.plots import loss_curves, metric_evolution
    from steps.tokenize import read_tokenized
    from steps.tracking import fetch, log_figure, step_run

    splits, meta = read_tokenized(fetch(uris.tokenized, "tokenized", "tokenize"))
    tokenizer = AutoTokenizer.from_pretrained(str(fetch(uris.tokenizer, "tokenizer", "tokenize")))
    torch.manual_seed(cfg.seed)  # the new classification head is drawn at load time
    model = load_classifier(cfg.model)
    upstream = {"tokenized": uris.tokenized, "tokenizer": uris.tokenizer}
    with step_run("train", config_params(cfg), upstream):
        def log_epoch(epoch: int, row: dict[str, float]) -> None:
            mlflow.log_metrics(row, step=epoch)
            print(f"train: epoch {epoch}/{cfg.epochs}  loss {row['train_running_loss']:.4f}  "
                  f"val_loss {row['val_loss']:.4f}  val_accuracy {row['val_accuracy']:.4f}  "
                  f"({row['epoch_seconds']:.0f} s)", flush=True)

        history = pd.DataFrame(fit(model, splits["train"], splits["val"], cfg,
                                   meta["pad_token_id"], log_epoch))
        history.insert(0, "epoch", range(1, len(history) + 1))
        log_figure(loss_curves(history), "plots/loss_curves.png")
        log_figure(metric_evolution(history), "plots/metric_evolution.png")
        log_classifier(model, tokenizer, meta["max_length"])


if __name__ == "__main__":
    run_step("train", main, sys.argv[1:])
