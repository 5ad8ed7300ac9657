"""Running a step inside `main`'s own process instead of a process of its own.

With `AGNEWS_INLINE_STEPS=1` in main's environment, `run_child` runs each step's `main` in
this process: the same MLproject command (computed by MLflow's own project code, with the
defaults it fills in and the missing parameters it refuses), the same pre-created child run, the
same artifacts and metrics. What it saves is each step's start-up (importing MLflow, torch,
transformers, the plotting libraries: several seconds per step, paid once instead of six
times), which matters for many small runs: the test suite uses it where the process
boundary is not what a test is about. What differs: `peak_rss_mb` is main's process peak,
a step's `process.pid` is main's, and steps run one at a time (a sweep's `n_jobs` trials,
which must train at once, keep processes of their own). MLflow offers no in-process runner
for project entry points, hence this one.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

from agnews.cli import run_step

INLINE_ENV = "AGNEWS_INLINE_STEPS"
SIGNATURE_TIMEOUT = "MLFLOW_INPUT_EXAMPLE_INFERENCE_TIMEOUT"

# The step's run reaches it through MLFLOW_RUN_ID, an environment variable of the process:
# two steps at once would take each other's.
_ONE_AT_A_TIME = threading.Lock()


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """These environment variables while the block runs; each as it was afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def inline_steps() -> bool:
    """Whether main runs its steps in its own process (`AGNEWS_INLINE_STEPS=1`)."""
    return os.environ.get(INLINE_ENV, "") == "1"


def step_argv(project: Path, step: str, parameters: dict[str, str], storage_dir: str) -> list[str]:
    """The arguments of `steps.<step>`'s `main`, from the entry point's MLproject command
    exactly as `mlflow run` computes it (`python -m steps.<step> --name value ...`)."""
    from mlflow.projects import _project_spec

    entry_point = _project_spec.load_project(str(project)).get_entry_point(step)
    argv = shlex.split(entry_point.compute_command(parameters, storage_dir))
    if argv[:3] != ["python", "-m", f"steps.{step}"]:
        raise ValueError(f"entry point '{step}' does not run `python -m steps.{step}`: "
                         f"{' '.join(argv[:3])}")
    return argv[3:]


def argv_or_fail(client, project: Path, step: str, parameters: dict[str, str], run_id: str,
                 storage: str) -> list[str] | None:
    """The step's arguments (`step_argv`), or None once its run is FAILED and the one line
    `mlflow run` would print for a command it refuses to start is on stderr."""
    try:
        return step_argv(project, step, parameters, storage)
    except Exception as err:  # noqa: BLE001 - what `mlflow run` would refuse to start
        print(f"{step}: error: {err}", file=sys.stderr)
        client.set_terminated(run_id, "FAILED")
        return None


def exit_code(step: str, argv: list[str]) -> int:
    """Run `steps.<step>` as its command line would (`agnews.cli.run_step`: a UserError is
    one line on stderr) and return its exit code; a crash prints its traceback, code 1."""
    try:
        run_step(step, importlib.import_module(f"steps.{step}").main, argv)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)  # sys.exit("message"), as Python prints it
        return 1
    except BaseException:  # what a step's own process would die of
        traceback.print_exc()
        return 1
    return 0


def run_inline(project: Path, step: str, parameters: dict[str, str], run_id: str) -> int:
    """Run one step in this process inside its existing run `run_id`; returns the exit code
    its own process would have had (0: it succeeded).

    The step runs in a thread of its own because MLflow keeps the active run per thread:
    there the step starts `run_id` as its process would, while main's thread keeps the
    parent active. The run is then closed FINISHED or FAILED, as `mlflow.projects` does
    when a step's process exits."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    # where `mlflow.projects` would record its "local" backend: say what ran it instead
    client.set_tag(run_id, "mlflow.project.backend", "inline")
    result: list[int] = []
    with _ONE_AT_A_TIME, tempfile.TemporaryDirectory() as storage:
        argv = argv_or_fail(client, project, step, parameters, run_id, storage)
        if argv is None:
            return 2
        print(f"{step}: runs inside this process (AGNEWS_INLINE_STEPS=1)", flush=True)

        def body() -> None:
            result.append(exit_code(step, argv))
            sys.stdout.flush()

        # MLFLOW_RUN_ID: mlflow.start_run takes it (and unsets it) as in the step's process.
        # MLflow bounds a model's signature inference with SIGALRM, which only the main thread
        # may set: without a timeout it infers the same signature in the step's thread.
        with environ({"MLFLOW_RUN_ID": run_id, SIGNATURE_TIMEOUT: "0"}):
            thread = threading.Thread(target=body, name=f"step-{step}", daemon=True)
            thread.start()
            thread.join()
    code = result[0] if result else 1
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, "FAILED" if code else "FINISHED")
    return code
