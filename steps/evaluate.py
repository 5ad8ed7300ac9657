"""Step 4, evaluate: score the test split with the model train logged.

Reads: `model_uri` (the `model` of a train run: `runs:/<train run>/model`) and `splits` (the
`data/` artifact of an ingest run). The model is tokenized and truncated with the settings
it was logged with, so what is scored here is what a served model would see.
Writes: `test_loss`, `test_accuracy`, `test_f1`, `test_precision`, `test_recall` (weighted),
`test_log_loss`, `test_roc_auc` (macro one-vs-rest), `test_ece` (expected calibration error,
10 bins); the metrics and artifacts of `mlflow.models.evaluate(model_type="classifier")` on
the predictions; `predictions.parquet` (text, label, predicted label, class probabilities);
the tables `per_class_metrics.json` and `most_confident_mistakes.json` (the 25 wrong
predictions the model was surest of); plots under `plots/`: confusion_matrix,
final_metrics, per_class_metrics, roc_pr_curves, reliability_diagram, confidence_histogram.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import LABELS, EvalConfig
from steps.metrics import (classification_metrics, expected_calibration_error, per_class_metrics,
                           roc_auc_macro)

PROB_COLUMNS = [f"prob_{name}" for name in LABELS]
MISTAKES = 25


def predictions_frame(df: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """One row per test text: truth, prediction, both as names, and every class probability."""
    pred = probs.argmax(axis=1)
    out = pd.DataFrame({"text": df["text"].to_numpy(), "label": df["label"].to_numpy(),
                        "predicted": pred,
                        "label_name": [LABELS[i] for i in df["label"]],
                        "predicted_name": [LABELS[i] for i in pred],
                        "confidence": probs.max(axis=1)})
    out[PROB_COLUMNS] = probs
    return out


def as_test_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The weighted test metrics, plus log loss, macro one-vs-rest ROC AUC and ECE."""
    metrics = {f"test_{k}": v for k, v in classification_metrics(labels, probs).items()}
    metrics["test_log_loss"] = metrics["test_loss"]  # the same cross-entropy, by its sklearn name
    metrics["test_ece"] = expected_calibration_error(labels, probs)
    auc = roc_auc_macro(labels, probs)
    if auc is not None:  # undefined when a class is missing from the test rows
        metrics["test_roc_auc"] = auc
    return metrics


def confident_mistakes(preds: pd.DataFrame, n: int = MISTAKES) -> pd.DataFrame:
    """The `n` wrong predictions the model was surest of, most confident first."""
    wrong = preds[preds["predicted"] != preds["label"]]
    top = wrong.sort_values("confidence", ascending=False, kind="stable").head(n)
    return top[["text", "label_name", "predicted_name", "confidence"]].rename(
        columns={"label_name": "true", "predicted_name": "predicted"}).reset_index(drop=True)


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("evaluate", argv, [EvalConfig], {
        "model_uri": "model logged by a train run: runs:/<id>/model",
        "splits": "data/ artifact of an ingest run: runs:/<id>/data"})
    import mlflow

    from steps.model_logging import load_logged_classifier, score_texts
    from steps import eval_plots
    from steps.tracking import fetch, log_dataframe, log_figure, step_run

    test = pd.read_parquet(fetch(uris.splits, "data", "ingest") / "test.parquet")
    clf = load_logged_classifier(uris.model_uri, cfg.precision)
    with step_run("evaluate", config_params(cfg),
                  {"model_uri": uris.model_uri, "splits": uris.splits}):
        mlflow.set_tags({**clf.precision.tags(),
                         "device": str(next(clf.model.parameters()).device)})
        start = time.perf_counter()  # tokenizing counts: a served model tokenizes too
        probs = score_texts(clf, test["text"].tolist(), cfg.eval_batch_size)
        mlflow.log_metric("predict_rows_per_second", len(test) / (time.perf_counter() - start))
        preds = predictions_frame(test, probs)
        metrics = as_test_metrics(test["label"].to_numpy(), probs)
        mlflow.log_metrics(metrics)
        # The evaluator scores the static predictions: no second forward pass, and its
        # metrics and artifacts (confusion matrix, per-class table) land in this run.
        mlflow.models.evaluate(
            data=preds[["label_name", "predicted_name"]], targets="label_name",
            predictions="predicted_name", model_type="classifier",
            evaluator_config={"log_model_explainability": False, "label_list": list(LABELS)})
        log_dataframe(preds, "predictions.parquet")
        labels, pred = preds["label"].to_numpy(), preds["predicted"].to_numpy()
        per_class = per_class_metrics(labels, pred)
        mlflow.log_table(pd.DataFrame(per_class), "per_class_metrics.json")
        mlflow.log_table(confident_mistakes(preds), "most_confident_mistakes.json")
        for name, fig in (("confusion_matrix", eval_plots.confusion_matrices(labels, pred)),
                          ("final_metrics", eval_plots.final_metrics(metrics)),
                          ("per_class_metrics", eval_plots.per_class_bars(per_class)),
                          ("roc_pr_curves", eval_plots.roc_pr_curves(labels, probs)),
                          ("reliability_diagram", eval_plots.reliability_diagram(labels, probs)),
                          ("confidence_histogram", eval_plots.confidence_histogram(labels, probs))):
            log_figure(fig, f"plots/{name}.png")
    print("evaluate: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    run_step("evaluate", main, sys.argv[1:])
