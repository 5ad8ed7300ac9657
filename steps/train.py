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
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import TrainConfig, TrialConfig
from agnews.training.distributed import Processes, in_worker, launch_command
from agnews.training.loop import fit


def checkpoint_path(cfg: TrainConfig) -> Path | None:
    return Path(cfg.checkpoint_dir) / "checkpoint.pt" if cfg.checkpoint_dir else None


def train(cfg: TrainConfig, uris, processes: Processes, trial: TrialConfig = TrialConfig()
          ) -> None:
    """Train in this process; process 0 alone logs the run, its curves and the model."""
    import mlflow
    from tqdm.auto import tqdm

    from agnews.data.tokenized import read_tokenized
    from agnews.model.pretrained import load_classifier, locate
    from agnews.tracking.runs import fetch, log_figure, step_run

    splits, meta = read_tokenized(fetch(uris.tokenized, "tokenized", "tokenize"))
    tokenizer_dir = fetch(uris.tokenizer, "tokenizer", "tokenize")
    source = locate(cfg.model, cfg.model_revision)
    torch.manual_seed(cfg.seed)  # the new classification head is drawn at load time
    model = load_classifier(source).to(processes.device)
    if not processes.main:  # the other processes train their share and log nothing
        fit(model, splits["train"], splits["val"], cfg, meta["pad_token_id"],
            checkpoint=checkpoint_path(cfg), processes=processes)
        return
    upstream = {"tokenized": uris.tokenized, "tokenizer": uris.tokenizer}
    with step_run("train", config_params(cfg), upstream, system_metrics=True):
        mlflow.set_tags(source.tags())
        bar = tqdm(total=cfg.epochs * len(splits["train"]), unit="sample", desc="train",
                   dynamic_ncols=True, mininterval=1.0)

        def log_step(step: int, point: dict[str, float]) -> None:
            mlflow.log_metrics({k: point[k] for k in ("train_loss_step", "learning_rate")},
                               step=step)

        report, pruned, ran = None, (), []  # `except ()` catches nothing outside a sweep
        if trial.sweep_study:
            from optuna import TrialPruned

            from agnews.search.study import EpochReporter

            report = EpochReporter(trial.sweep_study, trial.sweep_storage, trial.sweep_trial)
            pruned = TrialPruned
            mlflow.set_tags({"sweep.study": trial.sweep_study,
                             "sweep.trial": str(trial.sweep_trial)})

        def log_epoch(epoch: int, row: dict[str, float]) -> None:
            mlflow.log_metrics(row, step=epoch)
            ran.append(epoch)
            bar.write(f"train: epoch {epoch}/{cfg.epochs}  loss {row['train_running_loss']:.4f}"
                      f"  val_loss {row['val_loss']:.4f}  val_f1 {row['val_f1']:.4f}  "
                      f"val_accuracy {row['val_accuracy']:.4f}  ({row['epoch_seconds']:.0f} s)")
            if report is not None:  # raises optuna.TrialPruned to stop here
                report(epoch, row["val_loss"], last=epoch == cfg.epochs)

        checkpoint = checkpoint_path(cfg)
        if checkpoint is not None and checkpoint.is_file():
            bar.write(f"train: resuming from {checkpoint}")
        try:
            result = fit(model, splits["train"], splits["val"], cfg, meta["pad_token_id"],
                         log_epoch, log_step, bar, checkpoint, processes)
        except pruned as err:
            bar.close()
            mlflow.set_tags({"pruned": "true", "pruned_at_epoch": str(ran[-1])})
            print(f"train: the sweep's pruner stopped this trial after epoch {ran[-1]} ({err})")
            return
        bar.close()
        mlflow.log_metric("best_epoch", result.best_epoch)
        mlflow.set_tags({**result.precision.tags(),
                         "device": str(next(model.parameters()).device),
                         "num_processes": str(processes.world)})
        mlflow.set_tag("best_epoch", str(result.best_epoch))
        print(f"train: kept the weights of epoch {result.best_epoch}"
              + (" (lowest val_loss)" if cfg.select_best else " (last; select_best=false)"))
        # Loaded only now: what training does not need stays out of its peak memory.
        from transformers import AutoTokenizer

        from agnews.model.logged_model import log_classifier
        from agnews.training.plots import learning_rate_schedule, loss_curves, metric_evolution

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        history = pd.DataFrame(result.history)
        history.insert(0, "epoch", range(1, len(history) + 1))
        steps = pd.DataFrame(result.steps)
        log_figure(loss_curves(history, steps), "plots/loss_curves.png")
        log_figure(metric_evolution(history, result.best_epoch), "plots/metric_evolution.png")
        if not steps.empty:
            log_figure(learning_rate_schedule(steps), "plots/learning_rate.png")
        log_classifier(model.cpu(), tokenizer, meta["max_length"])
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
