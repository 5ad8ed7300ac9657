"""Step 3, train: fine-tune the pretrained model as a 4-class sequence classifier.

Reads: `tokenized` (the `tokenized/` artifact of a tokenize run) and `tokenizer` (its
`tokenizer/` artifact), plus the pretrained `model`.
Writes, while training runs:
- every `log_every_steps` optimiser steps (MLflow `step` = optimiser step): `train_loss_step`
  (mean loss since the last point) and `learning_rate`;
- per epoch (MLflow `step` = epoch number): `train_loss`, `train_accuracy`, `train_f1`,
  `train_precision`, `train_recall`, the same five for `val_`, `train_running_loss` (mean
  loss of the epoch's steps), `epoch_seconds`, `train_samples_per_second`;
and at the end: `best_epoch` (the epoch whose weights were kept), plots
`plots/loss_curves.png`, `plots/metric_evolution.png`, `plots/learning_rate.png`, and the
fine-tuned model as an MLflow transformers model named `model`.

With `checkpoint_dir`, a checkpoint is written after every epoch and a restarted train
(after a crash or kill -9) resumes after the last complete epoch, re-logging the epochs it
restores so the run's curves have no gap or duplicate.

`train_*` metrics are measured after each epoch, in eval mode, on the training rows (a fixed
sample of at most 500), so they compare like for like with `val_*`: the gap between the
two is the overfitting signal. Batches group texts of similar length and pad only to their
longest text; `precision=auto` runs in the precision that is fastest on the hardware at hand
(`agnews.model.precision`), recorded with the reason as tags `precision_train`, `precision_score`,
`precision_reason`. A Hub model is pinned to a commit first (tag `model.revision`). MLflow's
system metrics (`system/cpu_utilization_percentage`, `system/system_memory_usage_megabytes`,
and `system/gpu_0_*` where a GPU is present) are logged beside the curves.

With `num_processes` N > 1, train starts itself again under torchrun in N processes
(`agnews.training.distributed`); process 0 logs everything above, the others only train.

Started by `sweep` (`sweep_study`, `sweep_storage`, `sweep_trial`), train hands each epoch's
val_loss to its Optuna trial; when the study's median pruner stops it, the run ends FINISHED
with tags `pruned=true`, `pruned_at_epoch` and the curves of the epochs it ran, and no model.
A trial that completes with a kept val_loss above one a finished trial of the study reached
cannot be the sweep's choice: it skips the parity gate's runtime trials (its model scores with
PyTorch, the reference) and is tagged `sweep.runtimes_compared=false`, so the gate's cost is
paid only by trials the sweep may keep.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import torch

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import TrainConfig, TrialConfig
from agnews.data.tokenized import TokenRows
from agnews.heap import long_lived
from agnews.model.device import device_name
from agnews.training.callbacks import Callback, ProgressBar
from agnews.training.distributed import Processes, in_worker, launch_command
from agnews.training.loop import FitResult, fit

# Deferred imports: what only one branch needs (the sweep's pruning, transformers' tokenizer for
# logging the model, the plots) loads in that branch, so the processes that only train never import
# it.


def checkpoint_path(cfg: TrainConfig) -> Path | None:
    return Path(cfg.checkpoint_dir) / "checkpoint.pt" if cfg.checkpoint_dir else None


class LiveCurves(Callback):
    """The run's curves as training goes: the per-step points and every epoch's metrics."""

    def on_step(self, step: int, point: dict[str, float]) -> None:
        mlflow.log_metrics({k: point[k] for k in ("train_loss_step", "learning_rate")},
                           step=step)

    def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
        mlflow.log_metrics(row, step=epoch)
        return False


def sweep_pruning(trial: TrialConfig, epochs: int) -> Callback | None:
    """In a trial of a sweep, the callback that reports each epoch to Optuna and stops the
    trial when the study's pruner says so; None otherwise."""
    if not trial.sweep_study:
        return None
    from agnews.search.study import TrialPruning

    mlflow.set_tags({"sweep.study": trial.sweep_study, "sweep.trial": str(trial.sweep_trial)})
    return TrialPruning(trial.sweep_study, trial.sweep_storage, trial.sweep_trial, epochs)


def kept_because(result: FitResult, cfg: TrainConfig) -> str:
    if not cfg.select_best:
        return "the last; select_best=false"
    if result.best_epoch < len(result.history):
        return ("significantly more accurate than the last on the validation rows, McNemar "
                f"p={result.selection_p:.2g}")
    return ("the last: no earlier epoch significantly more accurate on the validation rows"
            + (f", McNemar p={result.selection_p:.2g}" if result.selection_p < 1 else ""))


def log_trained(result: FitResult, model, tokenizer_dir: Path, splits: dict[str, TokenRows],
                meta: dict, cfg: TrainConfig, processes: Processes,
                beaten: tuple[int, float] | None = None) -> None:
    """On the active run: the kept epoch, the precision and device, the runtime the parity gate
    chose on the tokenized `splits` (none tried for a sweep trial `beaten` by (number, val_loss)
    of a finished trial), the model, and the plots."""
    mlflow.log_metric("best_epoch", result.best_epoch)
    device = next(model.parameters()).device
    mlflow.set_tags({**result.precision.tags(), "device": str(device),
                     "device_name": device_name(device),
                     "micro_batch_tokens_used": str(result.micro_batch_tokens),
                     "dropout_masks": result.dropout_masks,
                     "num_processes": str(processes.world), "best_epoch": str(result.best_epoch)})
    print(f"train: kept the weights of epoch {result.best_epoch} ({kept_because(result, cfg)})")
    # Loaded only now: what training does not need stays out of its peak memory.
    from transformers import AutoTokenizer

    from agnews.model.logged_model import log_classifier
    from agnews.model.onnx_export import RuntimeChoice, pick_runtime
    from agnews.model.parity import REFERENCE, gate_sample

    with tempfile.TemporaryDirectory() as tmp:
        if beaten is None:
            # Agreement with PyTorch needs no labels, so the val rows count for it beside the
            # test rows (the more rows, the firmer its bound); not the train rows, on which the
            # model is surer than on new text. Accuracy is compared on the test rows.
            ids, labels = gate_sample(splits["val"], splits["test"], cfg.seed)
            choice = pick_runtime(model, result.precision, ids, labels,
                                  meta["pad_token_id"], cfg.eval_batch_size, Path(tmp), cfg.scorer)
        else:
            mlflow.set_tag("sweep.runtimes_compared", "false")
            choice = RuntimeChoice(REFERENCE, (
                f"a sweep trial beaten by trial {beaten[0]} (kept val_loss "
                f"{result.history[result.best_epoch - 1]['val_loss']:.4f} against "
                f"{beaten[1]:.4f}): the sweep cannot keep it, so no other runtime was tried"))
        log_choice(choice)
        log_classifier(model.cpu(), AutoTokenizer.from_pretrained(str(tokenizer_dir)),
                       meta["max_length"], choice)
    # The plots last: matplotlib, loaded for them, would otherwise add its memory under the
    # parity gate's scoring pass, this process's peak (docs/performance.md, "Where train's
    # peak was").
    log_curves(result, cfg.label_smoothing)


def log_curves(result: FitResult, label_smoothing: float = 0.0) -> None:
    """The training plots: `plots/loss_curves.png`, `metric_evolution.png`, `learning_rate.png`."""
    from agnews.tracking.runs import log_figure
    from agnews.training.plots import learning_rate_schedule, loss_curves, metric_evolution

    history = pd.DataFrame(result.history)
    history.insert(0, "epoch", range(1, len(history) + 1))
    steps = pd.DataFrame(result.steps)
    log_figure(loss_curves(history, steps, label_smoothing), "plots/loss_curves.png")
    log_figure(metric_evolution(history, result.best_epoch), "plots/metric_evolution.png")
    if not steps.empty:
        log_figure(learning_rate_schedule(steps), "plots/learning_rate.png")


def log_choice(choice) -> None:
    """The parity gate's record on the run: tags `scorer` and `scorer_reason`, each trial's
    metrics (`parity_<runtime>_agreement`, its interval, `_p_worse`, `_rows_per_second`,
    `_accuracy`; none for a variant stopped early) and the table
    `parity_gate.json`."""
    mlflow.set_tags({"scorer": choice.scorer, "scorer_reason": choice.reason[:5000]})
    for trial in choice.trials:
        mlflow.log_metrics(trial.metrics())
    if choice.trials:
        mlflow.log_table(pd.DataFrame([vars(t) for t in choice.trials]), "parity_gate.json")
    if choice.warning:
        print(f"train: warning: {choice.warning}", file=sys.stderr, flush=True)
    print(f"train: the model scores with {choice.scorer}: {choice.reason}")


def train(cfg: TrainConfig, uris, processes: Processes, trial: TrialConfig = TrialConfig()
          ) -> None:
    """Train in this process; process 0 alone logs the run, its curves and the model."""
    from tqdm.auto import tqdm

    from agnews.data.tokenized import read_tokenized
    from agnews.model.pretrained import load_classifier, locate
    from agnews.tracking.runs import fetch, step_run

    splits, meta = read_tokenized(fetch(uris.tokenized, "tokenized", "tokenize"))
    tokenizer_dir = fetch(uris.tokenizer, "tokenizer", "tokenize")
    source = locate(cfg.model, cfg.model_revision)
    torch.manual_seed(cfg.seed)  # the new classification head is drawn at load time
    model = load_classifier(source).to(processes.device)
    checkpoint = checkpoint_path(cfg)
    data = (splits["train"], splits["val"], cfg, meta["pad_token_id"])
    if not processes.main:  # the other processes train their share and log nothing
        with long_lived():  # as step_run does for process 0
            fit(model, *data, checkpoint=checkpoint, processes=processes)
        return
    upstream = {"tokenized": uris.tokenized, "tokenizer": uris.tokenizer}
    with step_run("train", config_params(cfg), upstream, system_metrics=True):
        mlflow.set_tags(source.tags())
        rows = len(splits["train"]) * cfg.epochs
        bar = tqdm(total=min(rows, cfg.max_steps * cfg.train_batch_size) if cfg.max_steps
                   else rows, unit="sample", desc="train",
                   dynamic_ncols=True, mininterval=1.0)
        pruning = sweep_pruning(trial, cfg.epochs)
        callbacks = [LiveCurves(), ProgressBar(bar, cfg.epochs), *([pruning] if pruning else [])]
        if checkpoint is not None and checkpoint.is_file():
            bar.write(f"train: resuming from {checkpoint}")
        result = fit(model, *data, callbacks, checkpoint, processes)
        bar.close()
        if result.stopped_at is not None:  # only a sweep's pruner stops a run
            mlflow.set_tags({"pruned": "true", "pruned_at_epoch": str(result.stopped_at)})
            print(f"train: the sweep's pruner stopped this trial after epoch "
                  f"{result.stopped_at} ({pruning.reason})")
            return
        # the trial's value, as the sweep reads it: the kept epoch's val_loss
        beaten = (pruning.beaten_by(result.history[result.best_epoch - 1]["val_loss"])
                  if pruning else None)
        log_trained(result, model, tokenizer_dir, splits, meta, cfg, processes, beaten)
    if checkpoint is not None:
        # The finished run is now the record (and the step cache's hit); the checkpoint
        # only existed to survive a crash.
        checkpoint.unlink(missing_ok=True)


def main(argv=None) -> None:
    quiet_libraries()
    (cfg, trial), uris = parse("train", argv, [TrainConfig, TrialConfig], {
        "tokenized": "tokenized/ artifact of a tokenize run: runs:/<id>/tokenized",
        "tokenizer": "tokenizer/ artifact of a tokenize run: runs:/<id>/tokenizer"})
    if cfg.num_processes > 1 and not in_worker():
        # The launcher's processes inherit this run (MLFLOW_RUN_ID); process 0 logs to it.
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(subprocess.call(launch_command(cfg.num_processes, "steps.train", argv)))
    processes = Processes.join()
    try:
        train(cfg, uris, processes, trial)
    finally:
        processes.leave()


if __name__ == "__main__":
    run_step("train", main, sys.argv[1:])
