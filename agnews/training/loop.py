"""The training loop: AdamW with a linear decay, length-grouped batches, per-epoch train and
validation metrics, the epoch to keep, and a checkpoint after every epoch to resume from."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from agnews.config import TrainConfig
from agnews.data.tokenized import TokenRows, as_token_rows
from agnews.errors import UserError
from agnews.evaluation.metrics import classification_metrics
from agnews.model.batching import (
    batches,
    length_grouped_order,
    micro_batch_cap,
    predict_logits,
    softmax,
)
from agnews.model.device import Precision, grad_scaler, release_freed_memory
from agnews.model.precision import choose_precision
from agnews.training.callbacks import Callback, tell_epoch
from agnews.training.checkpoint import (
    UnreadableCheckpoint,
    load_checkpoint,
    save_checkpoint,
    set_aside,
)
from agnews.training.distributed import Processes, sharded_probs
from agnews.training.dropout import dropout_masks
from agnews.training.freezing import freeze
from agnews.training.gradients import backward
from agnews.training.selection import Choice, choose_epoch, is_candidate

# Deferred import: transformers (seconds) only for the learning-rate schedule, once per fit.

POINTS_PER_RUN = 40  # per-step points when log_every_steps=0 ("auto")
# train_* metrics are measured on at most this many training rows (a fixed sample): accuracy
# near 0.9 to about ±0.013, enough to see over- or underfitting, for ~2 s an epoch on 2 CPU
# cores; scoring all 1,000 default rows cost ~4.5 s an epoch, 2,000 rows at scale ~9 s.
TRAIN_EVAL_ROWS = 500


@dataclass
class FitResult:
    history: list[dict[str, float]]   # one row per epoch
    steps: list[dict[str, float]]     # one row per logged optimiser step
    best_epoch: int                   # the epoch whose weights the model holds now
    precision: Precision              # what training and scoring ran in, and why
    micro_batch_tokens: int           # the token cap training split batches at (0 = none)
    stopped_at: int | None = None     # the epoch after which a callback stopped training
    dropout_masks: str = "torch"      # whose dropout masks training drew, and why
    selection_p: float = 1.0          # McNemar's p that the candidate epoch beats the last


@dataclass
class TrainState:
    """fit's bookkeeping: what a checkpoint holds beside the training objects' own states."""

    epoch: int = 0                    # epochs done
    step: int = 0                     # optimiser steps done
    history: list = field(default_factory=list)   # one metrics row per epoch
    steps: list = field(default_factory=list)     # one row per logged optimiser step
    window: list = field(default_factory=list)    # step losses since the last logged point
    # The most accurate epoch on the validation rows before the last (`agnews.training.
    # selection`): its number, per-row correctness and trainable weights; and the latest
    # epoch's correctness, which the last epoch is judged on.
    candidate_epoch: int = 0
    candidate_right: list | None = None
    candidate_state: dict | None = None
    last_right: list | None = None


@dataclass
class Optimisation:
    """The objects one optimiser step uses, and how often a step is logged."""

    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    precision: Precision
    steps_per_epoch: int
    log_every: int
    micro_batch_tokens: int           # the token cap on this device (micro_batch_cap)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimiser steps in the whole run: the epochs', or `max_steps` if fewer."""
    steps = steps_per_epoch * cfg.epochs
    return min(steps, cfg.max_steps) if cfg.max_steps > 0 else steps


def log_interval(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimiser steps between two per-step points; 0 means about 40 points per run."""
    if cfg.log_every_steps > 0:
        return cfg.log_every_steps
    return max(1, total_steps(cfg, steps_per_epoch) // POINTS_PER_RUN)


def probabilities(model, rows: TokenRows, batch_size: int, pad_id: int,
                  precision: str = "fp32", processes: Processes = Processes()) -> np.ndarray:
    """Class probabilities of every row (each training process scores its share; every
    process gets them all)."""
    def scored(part: np.ndarray) -> np.ndarray:
        mine = rows if len(part) == len(rows) else rows.subset(part)
        return softmax(predict_logits(model, mine, batch_size, pad_id, precision))

    return sharded_probs(scored, len(rows), processes)


def score(model, rows: TokenRows | pd.DataFrame, batch_size: int, pad_id: int,
          precision: str = "fp32", processes: Processes = Processes()) -> dict[str, float]:
    """Loss, accuracy, F1, precision and recall of `model` on tokenized rows."""
    rows = as_token_rows(rows)
    return classification_metrics(rows.labels, probabilities(model, rows, batch_size, pad_id,
                                                             precision, processes))


def resume_from(checkpoint: Path, state: TrainState, model, opt: Optimisation,
                rng: np.random.Generator) -> bool:
    """Restore `state` and the training objects from `checkpoint`; an unreadable one is set
    aside with a warning and training starts over (False), as a crash mid-write or a foreign
    file must not fail every later run."""
    try:
        saved = load_checkpoint(checkpoint, model, opt.optimizer, opt.scheduler, opt.scaler, rng)
    except UnreadableCheckpoint as err:
        moved = set_aside(checkpoint)
        logging.getLogger(__name__).warning(
            "train: checkpoint %s cannot be read (%s); set aside as %s, training starts over",
            checkpoint, err, moved.name)
        return False
    vars(state).update(saved)
    return True


def optimisation(model, cfg: TrainConfig, rows: int, processes: Processes) -> Optimisation:
    """AdamW over the trainable weights with a linear decay to zero, in the precision chosen
    for this model and device."""
    from transformers import get_linear_schedule_with_warmup

    # The word-embedding matrix is about half the stand-in's weights (a third of TinyBERT's);
    # frozen, it needs no gradient and no AdamW moments (docs/performance.md, Memory).
    freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
    precision = processes.decided_by_main(lambda: choose_precision(cfg.precision, model))
    trainable = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel per parameter instead of a chain of element-wise ops, which made an
    # epoch ~15% faster on CPU and creates no full-size temporaries.
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, fused=True)
    steps_per_epoch = -(-rows // cfg.train_batch_size)
    device = next(model.parameters()).device
    return Optimisation(optimizer,
                        get_linear_schedule_with_warmup(optimizer, 0,
                                                        total_steps(cfg, steps_per_epoch)),
                        grad_scaler(precision.train, device), precision,
                        steps_per_epoch, log_interval(cfg, steps_per_epoch),
                        micro_batch_cap(cfg.micro_batch_tokens, device.type))


def train_epoch(net, train: TokenRows, cfg: TrainConfig, pad_id: int, opt: Optimisation,
                state: TrainState, rng: np.random.Generator, callbacks: Sequence[Callback],
                processes: Processes) -> tuple[list[float], int]:
    """One pass over the training rows in length-grouped batches, or up to `cfg.max_steps`;
    returns each step's loss and the rows trained on."""
    labels = torch.from_numpy(train.labels)
    epoch, losses, rows = state.epoch + 1, [], 0
    order = length_grouped_order(train.lengths, cfg.train_batch_size, rng)
    for idx, ids, mask in batches(train, cfg.train_batch_size, pad_id, order):
        if 0 < cfg.max_steps <= state.step:
            break
        loss = backward(net, idx, ids, mask, labels, opt.micro_batch_tokens,
                        opt.precision.train, opt.scaler, processes, cfg.label_smoothing)
        opt.scaler.step(opt.optimizer)  # skips the step if fp16 gradients overflowed
        opt.scaler.update()
        lr = opt.scheduler.get_last_lr()[0]  # the rate this step used
        opt.scheduler.step()
        opt.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        rows += len(idx)
        losses.append(loss)
        state.window.append(loss)
        for c in callbacks:
            c.on_batch(epoch, len(idx), loss)
        if state.step % opt.log_every == 0:
            point = {"train_loss_step": float(np.mean(state.window)), "learning_rate": lr,
                     "epoch": state.step / opt.steps_per_epoch}
            state.window = []
            state.steps.append({"step": state.step, **point})
            for c in callbacks:
                c.on_step(state.step, point)
    return losses, rows


def evaluate_epoch(model, splits: dict[str, TokenRows], cfg: TrainConfig, pad_id: int,
                   precision: Precision, processes: Processes
                   ) -> tuple[dict[str, float], np.ndarray]:
    """`<split>_loss`, `_accuracy`, `_f1`, `_precision`, `_recall` of each split, in eval mode,
    and which validation rows the model answers right."""
    release_freed_memory()  # the epoch's activations, before scoring's widest batches come
    row, right = {}, np.zeros(0, bool)
    for split, rows in splits.items():
        probs = probabilities(model, rows, cfg.eval_batch_size, pad_id, precision.score,
                              processes)
        row.update({f"{split}_{k}": v
                    for k, v in classification_metrics(rows.labels, probs).items()})
        if split == "val":
            right = probs.argmax(axis=1) == rows.labels
    return row, right


def remember(state: TrainState, model, right: np.ndarray, epoch: int, cfg: TrainConfig) -> None:
    """Note the epoch's validation answers; if it is the most accurate so far and not the last
    epoch (whose weights the model holds anyway), keep its trainable weights as the candidate."""
    state.last_right = right.tolist()
    if cfg.select_best and epoch < cfg.epochs and is_candidate(right, state.candidate_right):
        state.candidate_epoch, state.candidate_right = epoch, right.tolist()
        # Only what training changes: frozen weights and buffers stay as they are.
        state.candidate_state = {k: p.detach().clone()
                                 for k, p in model.named_parameters() if p.requires_grad}


def kept_epoch(state: TrainState, cfg: TrainConfig) -> Choice:
    """The epoch whose weights training ends with: the last, unless `select_best` and the
    candidate is significantly more accurate on the validation rows."""
    if not cfg.select_best or state.last_right is None or state.candidate_right is None:
        return Choice(state.epoch, 1.0)
    return choose_epoch(state.epoch, np.array(state.last_right), state.candidate_epoch,
                        np.array(state.candidate_right))


def restore(checkpoint: Path | None, state: TrainState, model, opt: Optimisation,
            rng: np.random.Generator, processes: Processes) -> bool:
    """Resume from `checkpoint` if it exists and can be read; every process resumes, or none.
    Process 0 decides (and alone sets an unreadable file aside); another process that cannot
    read what process 0 resumed from stops with one line."""
    def resume() -> bool:
        return checkpoint is not None and checkpoint.is_file() and resume_from(
            checkpoint, state, model, opt, rng)

    restored = processes.decided_by_main(resume)
    if restored and not processes.main and not resume():
        raise UserError(f"train process {processes.rank} cannot read the checkpoint process 0 "
                        f"resumed from ({checkpoint}): pass every machine the same "
                        "checkpoint_dir, on storage they all see")
    return restored


def replay(state: TrainState, callbacks: Sequence[Callback], rows: int) -> None:
    """Tell the callbacks what a resumed run did before, so their record has no gap."""
    for c in callbacks:
        c.on_resume(state.epoch, state.epoch * rows)
        for point in state.steps:
            c.on_step(point["step"], {k: v for k, v in point.items() if k != "step"})
        for epoch, row in enumerate(state.history, start=1):
            c.on_epoch(epoch, row)


def fit(model, train: TokenRows | pd.DataFrame, val: TokenRows | pd.DataFrame,
        cfg: TrainConfig, pad_id: int,
        callbacks: Sequence[Callback] = (), checkpoint: Path | None = None,
        processes: Processes = Processes()) -> FitResult:
    """Fine-tune with AdamW and a linear decay to zero.

    The callbacks hear of every optimiser step, every `log_interval` steps' point and every
    epoch's metrics as training runs (`agnews.training.callbacks`); one may stop training after
    an epoch. With `cfg.select_best`, the model ends holding the weights of the last epoch, or
    of an earlier one significantly more accurate on the validation rows
    (`agnews.training.selection`), kept in memory as training goes.

    With `checkpoint`, everything training depends on (weights, optimiser, schedule, random
    states, `TrainState`) is saved there after every epoch; if the file exists when fit starts,
    training resumes after its last epoch, first replaying the saved history through the
    callbacks, and ends exactly as an uninterrupted run. A file there that cannot be read is
    set aside (`resume_from`) and training starts over.

    Across `processes` (torchrun), every process takes its share of each batch's rows and
    DDP sums the gradients into the update one process would make; process 0 alone writes the
    checkpoint and should alone be given callbacks.
    """
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train, val = as_token_rows(train), as_token_rows(val)
    # A fixed sample (its own seeded generator, so training's shuffles stay as they were;
    # the rows pandas' `sample(random_state=seed)` drew).
    train_eval = train if len(train) <= TRAIN_EVAL_ROWS else train.subset(
        np.random.RandomState(cfg.seed).choice(len(train), TRAIN_EVAL_ROWS, replace=False))
    opt = optimisation(model, cfg, len(train), processes)
    state = TrainState()
    if restore(checkpoint, state, model, opt, rng, processes):
        replay(state, callbacks, len(train))
    with dropout_masks(model) as masks:
        stopped_at = epochs(model, train, val, train_eval, cfg, pad_id, opt, state, rng,
                            callbacks, checkpoint, processes)
    choice = kept_epoch(state, cfg)
    if choice.epoch < state.epoch:
        model.load_state_dict(state.candidate_state, strict=False)
    return FitResult(state.history, state.steps, choice.epoch, opt.precision,
                     opt.micro_batch_tokens, stopped_at, masks, choice.p_value)


def epochs(model, train: TokenRows, val: TokenRows, train_eval: TokenRows, cfg: TrainConfig,
           pad_id: int, opt: Optimisation, state: TrainState, rng: np.random.Generator,
           callbacks: Sequence[Callback], checkpoint: Path | None,
           processes: Processes) -> int | None:
    """`fit`'s epochs from `state` on: each trained, scored, kept if best and checkpointed;
    the epoch after which a callback stopped training, if one did."""
    net = processes.wrap(model)
    stopped_at = None
    steps = total_steps(cfg, opt.steps_per_epoch)
    while state.epoch < cfg.epochs and state.step < steps and stopped_at is None:
        net.train()
        start = time.perf_counter()
        losses, rows = train_epoch(net, train, cfg, pad_id, opt, state, rng, callbacks,
                                   processes)
        seconds = time.perf_counter() - start
        metrics, right = evaluate_epoch(model, {"train": train_eval, "val": val}, cfg, pad_id,
                                        opt.precision, processes)
        row = {"train_running_loss": float(np.mean(losses)), "epoch_seconds": seconds,
               "train_samples_per_second": rows / seconds, **metrics}
        state.history.append(row)
        state.epoch += 1
        remember(state, model, right, state.epoch, cfg)
        if checkpoint is not None and processes.main:
            save_checkpoint(checkpoint, vars(state), model, opt.optimizer, opt.scheduler,
                            opt.scaler, rng)
        if tell_epoch(callbacks, state.epoch, row):
            stopped_at = state.epoch
    return stopped_at
