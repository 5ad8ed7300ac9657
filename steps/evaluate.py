"""Step 4, evaluate: score the test split with the model train logged.

Reads: `model_uri` (the `model` of a train run: `runs:/<train run>/model`) and `splits` (the
`data/` artifact of an ingest run). The model is tokenized and truncated with the settings
it was logged with, so what is scored here is what a served model would see.
Writes: `test_loss`, `test_accuracy`, `test_f1`, `test_precision`, `test_recall` (weighted),
`test_log_loss`, `test_roc_auc` (macro one-vs-rest), `test_ece` (expected calibration error, 10
bins); a 95% interval `_ci_low` / `_ci_high` for each of them (Wilson for accuracy, weighted
recall and each class's recall; a seeded bootstrap for the rest), with `test_f1_macro` and
`test_recall_<class>` (`agnews.evaluation.intervals`); the metrics and artifacts of
`mlflow.models.evaluate(model_type="classifier")` on the predictions; `predictions.parquet`
(text, label, predicted label, class probabilities); the tables `per_class_metrics.json` and
`most_confident_mistakes.json` (the 25 wrong predictions the model was surest of); plots under
`plots/`: confusion_matrix, final_metrics, per_class_metrics, roc_pr_curves,
reliability_diagram, confidence_histogram.
"""
from __future__ import annotations

import sys
import time

import pandas as pd

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import LABELS, EvalConfig
from agnews.evaluation.metrics import per_class_metrics
from agnews.evaluation.predictions import as_test_metrics, confident_mistakes, predictions_frame

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("evaluate", argv, [EvalConfig], {
        "model_uri": "model logged by a train run: runs:/<id>/model",
        "splits": "data/ artifact of an ingest run: runs:/<id>/data"})
    import mlflow

    from agnews.evaluation import plots
    from agnews.evaluation.intervals import test_intervals
    from agnews.model.logged_model import load_logged_classifier, score_texts
    from agnews.tracking.runs import fetch, log_dataframe, log_figure, step_run

    test = pd.read_parquet(fetch(uris.splits, "data", "ingest") / "test.parquet")
    clf = load_logged_classifier(uris.model_uri, cfg.precision)
    with step_run("evaluate", config_params(cfg),
                  {"model_uri": uris.model_uri, "splits": uris.splits}):
        mlflow.set_tags(clf.runtime.tags())  # the scorer (runtime) and where it ran
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
        intervals = test_intervals(labels, probs)
        mlflow.log_metrics(intervals)
        per_class = per_class_metrics(labels, pred)
        mlflow.log_table(pd.DataFrame(per_class), "per_class_metrics.json")
        mlflow.log_table(confident_mistakes(preds), "most_confident_mistakes.json")
        for name, fig in (("confusion_matrix", plots.confusion_matrices(labels, pred)),
                          ("final_metrics", plots.final_metrics(metrics)),
                          ("per_class_metrics", plots.per_class_bars(per_class)),
                          ("roc_pr_curves", plots.roc_pr_curves(labels, probs)),
                          ("reliability_diagram", plots.reliability_diagram(labels, probs)),
                          ("confidence_histogram", plots.confidence_histogram(labels, probs))):
            log_figure(fig, f"plots/{name}.png")
    print("evaluate: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    print(f"evaluate: 95% intervals over the {len(test)} test rows: " + "  ".join(
        f"{k} [{intervals[f'{k}_ci_low']:.4f}, {intervals[f'{k}_ci_high']:.4f}]"
        for k in ("test_accuracy", "test_f1", "test_f1_macro")))


if __name__ == "__main__":
    run_step("evaluate", main, sys.argv[1:])
