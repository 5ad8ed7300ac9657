"""A real `mlflow models serve` of the registered champion, asked over HTTP as a client would."""
from __future__ import annotations

import pytest
from serving import TEXTS, ask_served_model
from support import ROOT, subprocess_env

from agnews.config import LABELS


def check_predictions(predictions: list) -> None:
    assert len(predictions) == len(TEXTS)
    for row in predictions:  # every class, each with a score; the scores sum to 1
        cells = list(row.values()) if isinstance(row, dict) else row
        assert {c["label"] for c in cells} == set(LABELS)
        assert sum(c["score"] for c in cells) == pytest.approx(1.0, abs=1e-4)


def test_mlflow_models_serve_answers_with_labels_and_scores(champion):
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": champion["uri"]}
    check_predictions(ask_served_model("models:/agnews-classifier@champion", env, ROOT))
