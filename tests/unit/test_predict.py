"""predict on files (good, unlabelled, with a bad row) and the MLflow UI's predict snippets,
with a tiny model registered as the champion in a fresh tracking store (the `champion`
fixture), so they exercise the default model URI (models:/agnews-classifier@champion).
"""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from agnews.config import LABELS
from agnews.errors import UserError
from agnews.evaluation.predictions import PROB_COLUMNS
from agnews.model.logged_model import INPUT_EXAMPLE
from steps import predict


@pytest.fixture
def ag_news_rows(ag_news, tmp_path):
    """The first 30 rows of the real test.csv, in its own (headerless) AG News layout."""
    lines = (ag_news / "test.csv").read_text(encoding="utf-8").splitlines(keepends=True)[:30]
    path = tmp_path / "rows.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_predict_scores_an_ag_news_file_with_the_champion(champion, ag_news_rows, tmp_path):
    out = tmp_path / "scored.csv"
    predict.main(["--input", str(ag_news_rows), "--output", str(out), "--precision", "fp32"])
    table = pd.read_csv(out)
    source = pd.read_csv(ag_news_rows, header=None)
    assert len(table) == 30
    assert table["text"].iloc[4] == f"{source[1].iloc[4].strip()} {source[2].iloc[4].strip()}"
    assert table["label"].tolist() == [LABELS[c - 1] for c in source[0]]
    assert set(table["predicted"]) <= set(LABELS)
    np.testing.assert_allclose(table[PROB_COLUMNS].sum(axis=1), 1.0, atol=1e-5)
    best = np.array(LABELS)[table[PROB_COLUMNS].to_numpy().argmax(axis=1)]
    assert (table["predicted"] == best).all()
    run = mlflow.last_active_run()
    assert run.data.params["model_uri"] == "models:/agnews-classifier@champion"
    assert run.data.metrics["predict_rows"] == 30 and 0 <= run.data.metrics["accuracy"] <= 1


def test_predict_unlabelled_parquet_to_parquet(champion, tmp_path):
    source = tmp_path / "texts.parquet"
    pd.DataFrame({"text": ["Shares jump after earnings", "Team wins the final", "x"]}).to_parquet(
        source)
    out = tmp_path / "scored.parquet"
    predict.main(["--input", str(source), "--output", str(out),
                  "--model_uri", champion["model_uri"]])
    table = pd.read_parquet(out)
    assert list(table.columns) == ["text", "predicted", "confidence", *PROB_COLUMNS]
    assert table["text"].tolist() == ["Shares jump after earnings", "Team wins the final", "x"]


def test_a_bad_row_stops_predict_before_anything_is_written(champion, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("text\nfirst story\nsecond story\n\"  \"\nfourth\n", encoding="utf-8")
    out = tmp_path / "scored.csv"
    out.write_text("earlier results\n")
    with pytest.raises(UserError, match=r"bad.csv has 1 empty text\(s\), at row\(s\) 3"):
        predict.main(["--input", str(source), "--output", str(out)])
    assert out.read_text() == "earlier results\n"  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("args, message", [
    (["--model_uri", "models:/no-such-model@champion"], "register one first"),
    (["--output", "{input}"], "is the input file"),
    (["--output", "{tmp}/missing/out.csv"], "does not exist"),
])
def test_predict_refuses_bad_arguments(champion, ag_news_rows, tmp_path, args, message):
    args = [a.format(input=ag_news_rows, tmp=tmp_path) for a in args]
    with pytest.raises(UserError, match=message):
        predict.main(["--input", str(ag_news_rows), "--output", str(tmp_path / "o.csv"), *args])


def test_the_ui_predict_snippets_work_with_the_logged_example(champion, tmp_path):
    """The snippets the MLflow UI shows for this model, run as shown (env_manager local
    instead of uv: the test runs offline in the project's environment; output_path to read
    the answer it would print)."""
    model = mlflow.pyfunc.load_model(champion["model_uri"])
    assert model.input_example == INPUT_EXAMPLE
    mlflow.models.predict(model_uri=champion["model_uri"], input_data=model.input_example,
                          env_manager="local", output_path=str(tmp_path / "answer.json"))
    answer = json.loads((tmp_path / "answer.json").read_text())["predictions"]
    assert len(answer) == len(INPUT_EXAMPLE)
    assert all(name in json.dumps(answer) for name in LABELS)
    # "Predict on a Pandas DataFrame": one column of texts
    answer = model.predict(pd.DataFrame(INPUT_EXAMPLE))
    assert len(answer) == len(INPUT_EXAMPLE)
    assert {cell["label"] for cell in answer.iloc[0]} == set(LABELS)
