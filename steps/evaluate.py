"""Step 4, evaluate: score the test split with the model train logged.

Reads: `model_uri` (the `model` of a train run: `runs:/<train run>/model`) and `splits` (the
`data/` artifact of an ingest run). The model is tokenized and truncated with the settings
it was logged with, so what is scored here is what a served model would see.
Writes: `test_loss`, `test_accuracy`, `test_f1`, `test_precision`, `test_recall` (weighted);
the metrics and artifacts of `mlflow.models.evaluate(model_type="classifier")` on the
predictions; `predictions.parquet` (text, label, predicted label, class probabilities);
the table `per_class_metrics.json`; plots `plots/confusion_matrix.png` and
`plots/final_metrics.png`.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import LABELS, EvalConfig
from steps.errors import UserError
from steps.metrics import classification_metrics, per_class_metrics

PROB_COLUMNS = [f"prob_{name}" for name in LABELS]


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
    return {f"test_{k}": v for k, v in classification_metrics(labels, probs).items()}


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("evaluate", argv, [EvalConfig], {
        "model_uri": "model logged by a train run: runs:/<id>/model",
        "splits": "data/ artifact of an ingest run: runs:/<id>/data"})
    import mlflow

    from steps.model_logging import load_classifier_components
    from steps.modeling import predict_logits, softmax
    from steps.plots import confusion_matrices, final_metrics
    from steps.tracking import fetch, log_dataframe, log_figure, step_run

    test = pd.read_parquet(fetch(uris.splits, "data", "ingest") / "test.parquet")
    try:
        info = mlflow.models.get_model_info(uris.model_uri)
    except Exception as err:
        raise UserError(f"cannot read model '{uris.model_uri}' ({str(err).splitlines()[0][:140]})"
                        ": pass runs:/<run id of a finished train run>/model") from None
    max_length = info.flavors["python_function"].get("config", {}).get("max_length", 512)
    model, tokenizer = load_classifier_components(uris.model_uri)
    ids = tokenizer(test["text"].tolist(), truncation=True, max_length=max_length)["input_ids"]
    with step_run("evaluate", config_params(cfg),
                  {"model_uri": uris.model_uri, "splits": uris.splits}):
        probs = softmax(predict_logits(model, ids, cfg.eval_batch_size, tokenizer.pad_token_id))
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
        mlflow.log_table(pd.DataFrame(per_class_metrics(preds["label"].to_numpy(),
                                                        preds["predicted"].to_numpy())),
                         "per_class_metrics.json")
        for path, fig in (("plots/confusion_matrix.png",
                           confusion_matrices(preds["label"].to_numpy(), preds["predicted"].to_numpy())),
                          ("plots/final_metrics.png", final_metrics(metrics))):
            log_figure(fig, path)
    print("evaluate: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    run_step("evaluate", main, sys.argv[1:])
