"""Tables of predictions and the test metrics computed from them (evaluate and predict)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from agnews.config import LABELS
from agnews.evaluation.metrics import (
    classification_metrics,
    expected_calibration_error,
    roc_auc_macro,
)

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


def prediction_table(texts: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """One row per text: its predicted class name, confidence and every class probability."""
    pred = probs.argmax(axis=1)
    out = pd.DataFrame({"text": texts["text"].to_numpy(),
                        "predicted": [LABELS[i] for i in pred],
                        "confidence": probs.max(axis=1)})
    out[PROB_COLUMNS] = probs
    if "label" in texts.columns:
        out.insert(1, "label", [LABELS[i] for i in texts["label"]])
    return out
