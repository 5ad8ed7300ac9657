"""A batch of new texts: reading it (texts, maybe labels, maybe the model's predictions as
`predict` writes them), and every drift check of it against the model's reference."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from agnews.config import LABELS
from agnews.data.tables import read_rows, validate
from agnews.errors import UserError
from agnews.evaluation.predictions import PROB_COLUMNS
from agnews.monitoring.drift import (
    ALPHA,
    Check,
    accuracy_check,
    class_mix_check,
    domain_classifier_check,
    judge,
    ks_check,
    unseen_pieces_check,
)
from agnews.monitoring.estimate import calibrate, estimated_accuracy_check
from agnews.monitoring.reference import Reference

# Deferred import: scikit-learn's metrics, only for a labelled batch; steps.monitor imports this
# module before its arguments parse.


def _class_index(values: pd.Series, column: str, name: str) -> np.ndarray:
    """Class indices 0-3 from indices or class names (as `predict` writes them)."""
    by_name = {label: i for i, label in enumerate(LABELS)}
    as_index = pd.to_numeric(values, errors="coerce")
    out = np.where(as_index.notna(), as_index, values.map(by_name))
    bad = pd.isna(out) | ~np.isin(out, np.arange(len(LABELS)))
    if bad.any():
        row = int(np.argmax(bad))
        raise UserError(f"{name} row {row + 1} has {column} {values.iloc[row]!r}: use 0-3 or a "
                        f"class name ({', '.join(LABELS)})")
    return out.astype(np.int64)


def read_batch(path: Path) -> pd.DataFrame:
    """`text`, and `label` / `predicted` (class indices) and `confidence` where the file has
    them: a CSV or Parquet file with a `text` column, the AG News CSV layout, or `predict`'s
    output as it is. Predictions are kept only when every class probability is there."""
    if not path.is_file():
        raise UserError(f"input '{path}' is not a file: pass a CSV or Parquet batch of texts "
                        "(paths are relative to the project folder)")
    frame, one_based = read_rows(path)
    if one_based:  # the AG News layout: its 1-4 class index checked and made 0-3
        frame = validate(frame, path.name, one_based=True)
    if "text" not in frame.columns:
        raise UserError(f"{path.name} has no `text` column (has: "
                        f"{', '.join(map(str, frame.columns))}): pass a file with one text a row")
    texts = frame["text"].astype("string")
    if frame.empty or (texts.fillna("").str.strip() == "").all():
        raise UserError(f"{path.name} has no texts: pass a batch with at least one text")
    keep = (texts.fillna("").str.strip() != "").to_numpy()
    frame = frame[keep].reset_index(drop=True)
    out = pd.DataFrame({"text": frame["text"].astype(str)})
    if "label" in frame.columns:
        out["label"] = _class_index(frame["label"], "label", path.name)
    if {"predicted", "confidence", *PROB_COLUMNS} <= set(frame.columns):
        out["predicted"] = _class_index(frame["predicted"], "predicted", path.name)
        out["confidence"] = pd.to_numeric(frame["confidence"]).to_numpy()
    return out


def token_lengths(ids: list[list[int]]) -> np.ndarray:
    return np.fromiter((len(seq) for seq in ids), dtype=np.int64, count=len(ids))


def batch_checks(ref: Reference, batch: pd.DataFrame, ids: dict[str, list[list[int]]],
                 unk_id: int | None, seed: int, alpha: float = ALPHA,
                 accuracy_margin: float = 0.0) -> list[Check]:
    """Every check of the batch, judged as one family at the false-alarm rate `alpha`: text
    length, unseen word pieces, vocabulary, predicted class mix, confidence, and accuracy:
    measured where the batch has labels, else estimated from the calibrated confidence. `ids`
    holds the word pieces of the reference's "train" and "test" texts and of the "batch"."""
    ref_ids, batch_ids = ids["test"], ids["batch"]
    counts = [np.bincount(p, minlength=len(LABELS))
              for p in (ref.test["predicted"].to_numpy(), batch["predicted"].to_numpy())]
    checks = [
        ks_check("length_tokens", "text length in tokens", token_lengths(ref_ids),
                 token_lengths(batch_ids)),
        unseen_pieces_check(ids["train"], ref_ids, batch_ids, unk_id),
        domain_classifier_check(ref.test["text"].tolist(), batch["text"].tolist(), seed),
        class_mix_check(counts[0], counts[1], LABELS),
        ks_check("confidence", "the model's confidence", ref.test["confidence"].to_numpy(),
                 batch["confidence"].to_numpy()),
    ]
    reference_right = (ref.test["label"] == ref.test["predicted"]).to_numpy()
    calibration = calibrate(ref.test["confidence"].to_numpy(), reference_right)
    labelled = "label" in batch.columns
    # Without labels the estimate stands in for accuracy in the family; with labels it is
    # still logged, beside the accuracy they measure, but not judged.
    checks.append(replace(estimated_accuracy_check(
        calibration, ref.test["confidence"].to_numpy(), batch["confidence"].to_numpy(),
        accuracy_margin), in_family=not labelled))
    if labelled:
        checks.append(accuracy_check(batch["label"].to_numpy() == batch["predicted"].to_numpy(),
                                     int(reference_right.sum()), len(ref.test), accuracy_margin))
    return judge(checks, alpha)


def check_metrics(checks: list[Check]) -> dict[str, float]:
    """Each check as MLflow metrics: `drift_<name>` (its value), `_p` (its test's p-value),
    `_p_holm` (adjusted over the batch's checks), `_flag` (0/1) and its numeric details."""
    out: dict[str, float] = {}
    for c in checks:
        out.update({f"drift_{c.name}": c.value, f"drift_{c.name}_p": c.p,
                    f"drift_{c.name}_p_holm": c.p_holm, f"drift_{c.name}_flag": float(c.drift)})
        out.update({f"drift_{c.name}_{k}": float(v) for k, v in (c.detail or {}).items()
                    if isinstance(v, (int, float))})
    return out


def label_metrics(batch: pd.DataFrame) -> dict[str, float]:
    """`batch_accuracy` and weighted `batch_f1` where the batch has labels; else nothing."""
    if "label" not in batch.columns:
        return {}
    from sklearn.metrics import accuracy_score, f1_score

    truth, pred = batch["label"].to_numpy(), batch["predicted"].to_numpy()
    return {"batch_accuracy": float(accuracy_score(truth, pred)),
            "batch_f1": float(f1_score(truth, pred, average="weighted"))}
