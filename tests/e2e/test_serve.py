"""A real `mlflow models serve` of the registered champion, asked over HTTP as a client would:
ordinary requests, one of 50,000 texts, and requests that hold no texts."""
from __future__ import annotations

import json

import pytest
from serving import TEXTS, invoke, served
from support import ROOT, sample_texts, subprocess_env

from agnews.config import LABELS
from agnews.model.served import SEND


def check_predictions(predictions: list, count: int = len(TEXTS)) -> None:
    assert len(predictions) == count
    for row in predictions:  # every class, each with a score; the scores sum to 1
        cells = list(row.values()) if isinstance(row, dict) else row
        assert {c["label"] for c in cells} == set(LABELS)
        assert sum(c["score"] for c in cells) == pytest.approx(1.0, abs=1e-4)


@pytest.fixture(scope="module")
def server(champion):
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": champion["uri"]}
    # -t: a request may take longer than MLflow's default 60 s (50,000 texts of a real model)
    with served("models:/agnews-classifier@champion", env, ROOT, "-t", "600") as url:
        yield url


def ask(url: str, payload) -> tuple[int, dict]:
    return invoke(url, json.dumps(payload).encode(), timeout=600)


def test_mlflow_models_serve_answers_with_labels_and_scores(server):
    status, answer = ask(server, {"inputs": TEXTS})
    assert status == 200
    check_predictions(answer["predictions"])


def test_a_request_of_50000_texts_is_answered_in_full(server, ag_news):
    texts = sample_texts(ag_news)
    texts = (texts * (50_000 // len(texts) + 1))[:50_000]
    status, answer = ask(server, {"dataframe_records": [{"text": t} for t in texts]})
    assert status == 200
    check_predictions(answer["predictions"], 50_000)


@pytest.mark.parametrize("body, says", [
    (b'{"inputs": ["an unfinished', "Ensure that input is a valid JSON"),  # MLflow's own
    (json.dumps({"dataframe_records": [{"title": "x"}]}).encode(),
     f"no 'text' field in the request (it has title): {SEND}"),
    (json.dumps({"inputs": []}).encode(), "missing inputs")])  # MLflow's schema check
def test_a_request_without_texts_gets_400_and_the_server_keeps_answering(server, body, says):
    status, answer = invoke(server, body)
    assert status == 400 and says in answer["message"], answer
    assert "stack_trace" not in answer
    status, answer = ask(server, {"inputs": TEXTS[:1]})
    assert status == 200
    check_predictions(answer["predictions"], 1)
