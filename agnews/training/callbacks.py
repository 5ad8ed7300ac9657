"""What the training loop tells its caller while it trains, as callbacks (the Hugging Face
Trainer's habit): the progress bar, the live MLflow curves and a sweep's pruning each plug
into `fit` without `fit` knowing of tqdm, MLflow or Optuna. Process 0 alone is given any.
"""
from __future__ import annotations

from collections.abc import Callable


class Callback:
    """Every hook does nothing unless a subclass overrides it."""

    def on_resume(self, epochs_done: int, samples_done: int) -> None:
        """Training resumes from a checkpoint after `epochs_done` epochs."""

    def on_batch(self, epoch: int, rows: int, loss: float) -> None:
        """An optimiser step of `rows` rows ended with mean loss `loss`."""

    def on_step(self, step: int, point: dict[str, float]) -> None:
        """A per-step point (`train_loss_step`, `learning_rate`, `epoch`), every
        `log_interval` optimiser steps; replayed from a checkpoint on resume."""

    def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
        """An epoch's metrics (replayed from a checkpoint on resume). Return True to stop
        training after this epoch (a sweep's pruner does)."""
        return False


class Hooks(Callback):
    """Plain functions as a callback: `on_step(step, point)`, `on_epoch(epoch, row)`."""

    def __init__(self, on_step: Callable[[int, dict], None] | None = None,
                 on_epoch: Callable[[int, dict], None] | None = None):
        self.step, self.epoch = on_step, on_epoch

    def on_step(self, step: int, point: dict[str, float]) -> None:
        if self.step:
            self.step(step, point)

    def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
        if self.epoch:
            self.epoch(epoch, row)
        return False


class ProgressBar(Callback):
    """A tqdm bar that advances by samples and shows the epoch and the loss, and a line per
    epoch with its losses and validation metrics."""

    def __init__(self, bar, epochs: int):
        self.bar, self.epochs = bar, epochs

    def on_resume(self, epochs_done: int, samples_done: int) -> None:
        self.bar.update(samples_done)

    def on_batch(self, epoch: int, rows: int, loss: float) -> None:
        self.bar.set_postfix(epoch=f"{epoch}/{self.epochs}", loss=f"{loss:.4f}", refresh=False)
        self.bar.update(rows)

    def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
        self.bar.write(f"train: epoch {epoch}/{self.epochs}  loss {row['train_running_loss']:.4f}"
                       f"  val_loss {row['val_loss']:.4f}  val_f1 {row['val_f1']:.4f}  "
                       f"val_accuracy {row['val_accuracy']:.4f}  ({row['epoch_seconds']:.0f} s)")
        return False


def tell_epoch(callbacks, epoch: int, row: dict[str, float]) -> bool:
    """Every callback hears of the epoch; True if any asks to stop."""
    return any([c.on_epoch(epoch, row) for c in callbacks])  # a list: each is called
