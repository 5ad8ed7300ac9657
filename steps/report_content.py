"""What the report says: every sentence computed from this run's numbers.

`build_report` turns `ReportFacts` (gathered from MLflow by `steps.report.main`) into
document blocks. Conclusions are functions of the numbers with stated thresholds, so a
crafted history gives a known verdict in tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from steps.config import LABELS
from steps.report_document import Block, Bullets, Code, Heading, Image, Para, Table

# A train-validation accuracy gap above this at the last epoch reads as overfitting.
OVERFIT_GAP = 0.05
CURVE_COLUMNS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "train_f1", "val_f1")
MAIN_PARAMS = ("data", "model", "train_size", "val_size", "test_size", "max_length", "epochs",
               "train_batch_size", "eval_batch_size", "learning_rate", "seed")


@dataclass
class ReportFacts:
    params: dict[str, str]            # every step's parameters, merged
    metrics: dict[str, dict[str, float]]  # step name -> its final metrics
    run_ids: dict[str, str]           # step name -> run id
    history: pd.DataFrame             # one row per epoch: epoch, train_*, val_*
    per_class: pd.DataFrame           # class, precision, recall, f1, support
    confusion: np.ndarray             # counts, rows = true class
    class_balance: pd.DataFrame       # split, class, rows, share
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG


def fmt(x: float) -> str:
    return f"{x:.4f}"


def fit_verdict(history: pd.DataFrame, gap: float = OVERFIT_GAP) -> str:
    """Over- or under-fitting from the train/validation gap at the last epoch and its trend."""
    last = history.iloc[-1]
    acc_gap = last["train_accuracy"] - last["val_accuracy"]
    loss_gap = last["val_loss"] - last["train_loss"]
    text = (f"At the last epoch train accuracy is {fmt(last['train_accuracy'])} and validation "
            f"accuracy {fmt(last['val_accuracy'])} (gap {acc_gap:+.4f}); validation minus train "
            f"loss is {loss_gap:+.4f}.")
    if acc_gap > gap:
        widening = len(history) > 1 and acc_gap > (history.iloc[-2]["train_accuracy"]
                                                   - history.iloc[-2]["val_accuracy"])
        return text + (f" The gap is above {gap} and {'widening' if widening else 'not widening'}"
                       ": the model overfits the training rows.")
    return text + f" The gap is within {gap}: no sign of overfitting."


def convergence_verdict(history: pd.DataFrame) -> str:
    """Whether validation loss was still falling when training stopped."""
    if len(history) < 2:
        return "Only one epoch ran, so convergence cannot be judged from the curve."
    prev, last = history["val_loss"].iloc[-2], history["val_loss"].iloc[-1]
    if last < prev:
        return (f"Validation loss was still falling at the last epoch ({fmt(prev)} → {fmt(last)}):"
                " training had not converged, and more epochs or data would likely help.")
    return (f"Validation loss stopped falling at the last epoch ({fmt(prev)} → {fmt(last)}): "
            "training has converged for this data; more epochs would not help.")


def most_confused(confusion: np.ndarray, top: int = 2) -> list[tuple[str, str, int]]:
    """The (true, predicted, count) off-diagonal cells with the most rows, largest first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    cells = sorted(((off[i, j], i, j) for i in range(len(off)) for j in range(len(off))),
                   reverse=True)
    return [(LABELS[i], LABELS[j], int(n)) for n, i, j in cells[:top] if n > 0]


def conclusions(f: ReportFacts) -> list[str]:
    out = [fit_verdict(f.history), convergence_verdict(f.history)]
    weakest = f.per_class.sort_values("f1").iloc[0]
    out.append(f"The weakest class is {weakest['class']} with F1 {fmt(weakest['f1'])}.")
    pairs = most_confused(f.confusion)
    if pairs:
        out.append("Most confused: " + "; ".join(
            f"{t} read as {p} {n} times" for t, p, n in pairs) + ".")
    return out


def reproduce_command(params: dict[str, str]) -> str:
    args = " ".join(f"-P {k}={params[k]}" for k in MAIN_PARAMS if k in params)
    return f"mlflow run . -e main --env-manager local {args}"


def build_report(f: ReportFacts) -> list[Block]:
    ev = f.metrics["evaluate"]
    train_rows = int(f.metrics["ingest"].get("train_rows", 0))
    pool_rows = int(f.metrics["ingest"].get("source_train_rows", train_rows))
    blocks: list[Block] = [
        Heading("AG News fine-tuning report", 1),
        Heading("Summary"),
        Table(["metric", "test"], [[m, fmt(ev[f"test_{m}"])]
                                  for m in ("accuracy", "f1", "precision", "recall", "loss")]),
        Para(f"{f.params.get('model')} fine-tuned on {train_rows} rows for "
             f"{len(f.history)} epoch(s) reaches test accuracy {fmt(ev['test_accuracy'])} and "
             f"weighted F1 {fmt(ev['test_f1'])} on {int(f.metrics['ingest'].get('test_rows', 0))}"
             " test rows. " + fit_verdict(f.history)),
        Heading("Data"),
        Para(f"Source: {f.params.get('data')}. Rows sampled with seed {f.params.get('seed')}, "
             "stratified by class; validation rows come from the train split and never overlap"
             f" the train rows. {fmt(f.metrics['tokenize'].get('truncated_share', 0))} of the "
             f"texts were truncated at {f.params.get('max_length')} tokens."),
        Table(["split"] + list(LABELS) + ["total"],
              [[split] + [str(int(r)) for r in g.set_index("class").reindex(LABELS)["rows"]]
               + [str(int(g["rows"].sum()))]
               for split, g in f.class_balance.groupby("split", sort=False)]),
        Heading("Process"),
        Table(["parameter", "value"], [[k, f.params[k]] for k in MAIN_PARAMS if k in f.params]),
        Heading("Training curves"),
        Table(["epoch"] + list(CURVE_COLUMNS),
              [[str(int(r["epoch"]))] + [fmt(r[c]) for c in CURVE_COLUMNS]
               for _, r in f.history.iterrows()]),
    ]
    blocks += [Image(n, c, f.images[n]) for n, c in (
        ("loss_curves.png", "Loss per epoch, train vs validation"),
        ("metric_evolution.png", "Accuracy, F1, precision and recall per epoch")) if n in f.images]
    blocks += [Heading("Evaluation"),
               Table(["class", "precision", "recall", "f1", "support"],
                     [[r["class"], fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]),
                       str(int(r["support"]))] for _, r in f.per_class.iterrows()])]
    blocks += [Image(n, c, f.images[n]) for n, c in (
        ("confusion_matrix.png", "Confusion matrix on the test split"),
        ("final_metrics.png", "Final test metrics")) if n in f.images]
    blocks += [Heading("Conclusions"), Bullets(conclusions(f)),
               Heading("Limitations"),
               Bullets([f"Trained on {train_rows} of the {pool_rows} rows the source's train "
                        "split holds; accuracy grows with more training rows.",
                        f"{len(f.history)} epoch(s); see the convergence conclusion above."]),
               Heading("Reproduce"), Code(reproduce_command(f.params)),
               Table(["step", "run id"], [[k, v] for k, v in f.run_ids.items()])]
    return blocks
