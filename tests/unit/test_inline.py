"""The in-process step runner (agnews.tracking.inline): the arguments MLflow's project code
computes for an entry point, and a step's exit code as its own process would have it."""
from __future__ import annotations

import sys
import types

import pytest
from mlflow.exceptions import ExecutionException
from support import ROOT

from agnews.errors import UserError
from agnews.tracking import inline


def test_a_steps_arguments_are_the_mlproject_command_mlflow_computes(tmp_path):
    argv = inline.step_argv(ROOT, "evaluate", {"model_uri": "runs:/abc/model",
                                               "splits": "runs:/def/data"}, str(tmp_path))
    assert argv[:4] == ["--model_uri", "runs:/abc/model", "--splits", "runs:/def/data"]
    assert argv[argv.index("--eval_batch_size") + 1] == "64"  # the MLproject default
    with pytest.raises(ExecutionException, match="splits"):  # as `mlflow run` refuses it
        inline.step_argv(ROOT, "evaluate", {"model_uri": "x"}, str(tmp_path))


@pytest.mark.parametrize(("body", "code", "stderr"), [
    (lambda argv: None, 0, ""),
    (lambda argv: sys.exit(3), 3, ""),
    (lambda argv: sys.exit("stopped: fix it"), 1, "stopped: fix it\n"),
    (lambda argv: (_ for _ in ()).throw(UserError("bad -P value: use 1")), 2,
     "fake: error: bad -P value: use 1\n"),
    (lambda argv: 1 / 0, 1, "ZeroDivisionError"),
], ids=["success", "exit-3", "exit-message", "user-error", "crash"])
def test_exit_code_is_what_the_steps_own_process_would_exit_with(body, code, stderr,
                                                                 monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "steps.fake", types.SimpleNamespace(main=body))
    assert inline.exit_code("fake", ["--a", "1"]) == code
    assert stderr in capsys.readouterr().err


def test_inline_only_when_asked(monkeypatch):
    monkeypatch.delenv(inline.INLINE_ENV, raising=False)
    assert not inline.inline_steps()
    monkeypatch.setenv(inline.INLINE_ENV, "1")
    assert inline.inline_steps()


def test_a_step_mlflow_would_refuse_to_start_fails_its_run_with_one_line(tracking, capsys):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run_id = client.create_run(tracking).info.run_id
    assert inline.run_inline(ROOT, "evaluate", {"model_uri": "x"}, run_id) == 2
    assert client.get_run(run_id).info.status == "FAILED"
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("evaluate: error: ") and "splits" in errors[0]
