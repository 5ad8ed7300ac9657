"""A real `mlflow models serve` of the registered champion, asked over HTTP as a client would."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT, subprocess_env

from agnews.config import LABELS

NAME = "agnews-classifier"


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
