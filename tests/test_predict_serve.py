"""predict on files (good, unlabelled, with a bad row) and a real `mlflow models serve` round trip.

Both use a tiny model registered as the champion in a fresh tracking store, so they exercise
the default model URI (models:/agnews-classifier@champion) end to end.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, module_store, subprocess_env
from mlflow.tracking import MlflowClient

from steps import predict
from steps.config import LABELS
from steps.errors import UserError
from steps.evaluate import PROB_COLUMNS
from steps.model_logging import INPUT_EXAMPLE, log_classifier
from steps.pretrained import load_classifier, load_tokenizer

NAME = "agnews-classifier"


@pytest.fixture(scope="module")
def champion(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("champion")
    with module_store(tmp) as (uri, experiment):
        with mlflow.start_run(experiment_id=experiment):
            info = log_classifier(load_classifier(str(tiny_model)),
                                  load_tokenizer(str(tiny_model)), 32)
        version = mlflow.register_model(info.model_uri, NAME).version
        MlflowClient(uri).set_registered_model_alias(NAME, "champion", version)
        yield {"uri": uri, "model_uri": info.model_uri, "tmp": tmp}


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_with_labels_and_scores(champion):
    port = free_port()
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": champion["uri"]}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read()[-3000:]
            assert time.time() < deadline, "server did not answer /ping within 180 s"
            time.sleep(1)
        texts = ["Oil prices climb as supply tightens", "Striker scores twice in derby win",
                 "New chip doubles battery life"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps({"inputs": texts}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            body = json.loads(r.read())
        predictions = body["predictions"]
        assert len(predictions) == len(texts)
        for row in predictions:  # every class, each with a score; the scores sum to 1
            cells = list(row.values()) if isinstance(row, dict) else row
            assert {c["label"] for c in cells} == set(LABELS)
            assert sum(c["score"] for c in cells) == pytest.approx(1.0, abs=1e-4)
    finally:
        server.terminate()
        server.wait(timeout=30)
