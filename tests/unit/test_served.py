"""The served model (`agnews.model.served`): what a request may hold, the answer's shape, and
scoring in chunks that gives what evaluate's scoring gives, row for row."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from support import sample_texts

from agnews.config import LABELS
from agnews.model.logged_model import (
    INPUT_EXAMPLE,
    load_logged_classifier,
    pip_requirements,
    score_texts,
)
from agnews.model.served import SEND, ranked, request_texts


@pytest.mark.parametrize("model_input", [
    ["a", "b"], np.array(["a", "b"]), pd.Series(["a", "b"]),
    pd.DataFrame({"text": ["a", "b"], "label": [1, 2]}), pd.DataFrame(["a", "b"])])
def test_a_request_hands_over_its_texts(model_input):
    assert request_texts(model_input) == ["a", "b"]


@pytest.mark.parametrize("model_input, problem", [
    (pd.DataFrame({"title": ["a"]}), "no 'text' field in the request (it has title)"),
    (pd.DataFrame({"text": []}), "the request holds no texts"),
    ([], "the request holds no texts"),
    (["a", None], "text 1 is NoneType, not a string"),
    ({"text": "a"}, "a request of dict holds no texts")])
def test_a_request_without_texts_is_refused_in_one_line(model_input, problem):
    with pytest.raises(MlflowException) as caught:
        request_texts(model_input)
    assert caught.value.message == f"{problem}: {SEND}"
    assert caught.value.get_http_status_code() == 400  # what the scoring server answers


def test_the_answer_ranks_every_class_highest_first():
    [first, second] = ranked(np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]]), list(LABELS))
    assert [c["label"] for c in first] == [LABELS[1], LABELS[2], LABELS[0], LABELS[3]]
    assert [c["score"] for c in second] == pytest.approx([0.7, 0.1, 0.1, 0.1])


def test_scoring_in_chunks_gives_evaluates_scores_row_for_row(champion, ag_news):
    texts = sample_texts(ag_news)[:53]
    model = mlflow.pyfunc.load_model(champion["model_uri"], model_config={
        "chunk_rows": 10, "batch_size": 4, "precision": "fp32"})  # 6 chunks, the last short
    answer = model.predict(texts)
    assert len(answer) == len(texts)
    served = np.array([[next(c["score"] for c in row if c["label"] == name) for name in LABELS]
                       for row in answer.itertuples(index=False)])
    clf = load_logged_classifier(champion["model_uri"], "fp32")
    # a step's long pass may split into two processes; the server, answering from several
    # threads, never does (agnews.model.forked)
    assert clf.runtime.split and not model.unwrap_python_model().clf.runtime.split
    expected = score_texts(clf, texts, 64)
    assert np.abs(served - expected).max() < 1e-6
    # the rows differ from each other by far more than that: a row out of place would show
    assert np.abs(np.roll(served, 1, axis=0) - expected).max() > 1e-5


def test_a_model_logged_by_the_transformers_flavor_still_loads(champion, tiny_model, tmp_path):
    """Versions registered before the pyfunc (MLflow's transformers flavor) stay usable: a
    register comparing against such a champion, predict and monitor load them."""
    from agnews.model.pretrained import load_classifier, load_tokenizer

    with mlflow.start_run():
        info = mlflow.transformers.log_model(
            {"model": load_classifier(str(tiny_model)), "tokenizer": load_tokenizer(
                str(tiny_model))}, name="model", task="text-classification",
            input_example=INPUT_EXAMPLE, pip_requirements=pip_requirements(),
            model_config={"truncation": True, "max_length": 32, "top_k": None})
    clf = load_logged_classifier(info.model_uri, "fp32")
    assert clf.max_length == 32
    assert score_texts(clf, ["Stocks fall"], 8).shape == (1, len(LABELS))
