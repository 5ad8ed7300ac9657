"""The tracking client's retry policy and what a step does when the server is lost
(`agnews.tracking.server`), against a port where nothing listens: MLflow's real client, its
real retries and the exception it really raises."""
from __future__ import annotations

import os
import time

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from serving import free_port

from agnews.cli import run_step
from agnews.tracking import server


@pytest.fixture
def dead_server(monkeypatch, tmp_path):
    """A tracking URI where nothing listens; the retry settings and the module's memory of
    them restored afterwards."""
    for name in server.RETRIES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(server, "_policy_before_giving_up", {})
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(None)


def test_the_wait_before_giving_up_follows_urllib3s_back_off():
    assert server.retry_seconds(6, 2) == 0 + 4 + 8 + 16 + 32 + 64
    assert server.retry_seconds(7, 2) == 244  # MLflow's own default: "about 4 minutes"
    assert server.retry_seconds(9, 2) == 244 + 120 + 120  # one wait is capped at 120 s
    assert server.retry_seconds(0, 2) == server.retry_seconds(1, 2) == 0


def test_the_projects_retries_are_set_unless_the_user_set_their_own(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)
    server.set_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "2"


def test_a_call_to_a_dead_server_waits_the_back_off_then_is_told_lost(dead_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    start = time.monotonic()
    with pytest.raises(MlflowException) as caught:
        MlflowClient(dead_server).get_run("0" * 32)
    waited = time.monotonic() - start
    # no wait before the first retry, then 2 s, plus MLflow's jitter of up to 1 s a retry
    assert server.retry_seconds(2, 1) == 2 <= waited < 2 + 2 + 5
    assert server.is_lost(caught.value)


def test_an_error_the_server_answered_with_is_not_a_lost_server(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MlflowException) as caught:
        client.get_run("0" * 32)
    assert not server.is_lost(caught.value)
    assert not server.is_lost(ValueError("Max retries exceeded"))


def test_fail_fast_gives_up_on_the_server_and_says_so(dead_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    with pytest.raises(server.ServerLost) as caught, server.fail_fast():
        MlflowClient().get_run("0" * 32)
    assert str(caught.value).startswith(f"the tracking server {dead_server} did not answer, or "
                                        "only with errors, after 1 retries over about 0 s: "
                                        "bring it back")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # the run's exit fails at once
    start = time.monotonic()
    with pytest.raises(MlflowException):
        MlflowClient().get_run("0" * 32)
    assert time.monotonic() - start < 2
    with pytest.raises(KeyError), server.fail_fast():  # anything else passes through
        {}["missing"]


def test_a_step_that_loses_its_server_ends_with_one_line(dead_server, monkeypatch, capsys):
    def step(argv) -> None:
        MlflowClient().get_run("0" * 32)

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    with pytest.raises(SystemExit) as stop:
        run_step("train", step, [])
    assert stop.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"train: error: the tracking server {dead_server} did not answer, "
                           "or only with errors, after 1 retries")
    assert "rerun the same command" in line
