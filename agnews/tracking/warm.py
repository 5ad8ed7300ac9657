"""Steps forked from a warm process: each step a process of its own, without its start-up.

A step started as `python -m steps.<step>` spends seconds importing MLflow, pandas, torch and
transformers before it does anything, six times over in a `main`. On Linux, `main` (and
`sweep`) run from the command line instead start each step through Python's `forkserver`:
a server process, started once main has pinned its inputs, imports those libraries
(`agnews.tracking.preload`), and every step is then a fresh fork of it that runs the step's
MLproject command (computed by MLflow's own project code, as with `AGNEWS_INLINE_STEPS=1`) in
the pre-created child run, in main's current environment. Each step keeps what a process of
its own gives (its pid, its peak memory, its memory freed as it ends, a native crash that takes
down only the step); it starts from a process whose imports are done, and which has never
opened a tracking connection or started a thread (what makes forking `main` itself unsafe).
`AGNEWS_FORK_STEPS=0` starts every step as MLflow's project runner does, a new interpreter.
The standard library's forkserver does the forking; what is ours is which step runs in it.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

from agnews.tracking.inline import argv_or_fail, exit_code, inline_steps

FORK_ENV = "AGNEWS_FORK_STEPS"
PRELOAD = "agnews.tracking.preload"

_enabled: list[bool] = []  # set by the entry point that owns this process (`serve_steps`)


def serve_steps() -> None:
    """For `main` and `sweep` started as their own process: fork their steps from a warm
    server where this platform allows it. Not for a process that runs them in-process (the
    tests), where one server would outlive the environment it was started in."""
    _enabled[:] = [True]


def forking() -> bool:
    """Whether `run_child` forks this process's steps from the warm server: not where they run
    inside it (`AGNEWS_INLINE_STEPS=1`, whose steps that need a process of their own, a
    sweep's `n_jobs` trials, start as new interpreters)."""
    return bool(_enabled) and sys.platform.startswith("linux") \
        and os.environ.get(FORK_ENV, "1") != "0" and not inline_steps()


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    return context


def worth_a_server(to_run: list[str]) -> bool:
    """Whether steps `to_run` gain from the warm server: only if one of them loads torch and
    transformers (train, evaluate). Its imports take about as long as those two steps' own;
    the light steps alone (a rerun of register or report) start sooner as new interpreters,
    which import only MLflow and pandas."""
    return bool(set(to_run) & {"train", "evaluate"})


def start_server(who: str) -> None:
    """Start the warm server now, where steps are forked, so that it imports while `who`
    (main, sweep) does its own first work (opening the tracking store, its runs, its cache
    lookups); the first step waits only for the rest. Call it once the environment the steps
    need is set (`HF_HUB_OFFLINE`): the server's libraries read theirs as they are imported.
    Where it cannot start, the steps start as new interpreters, as MLflow's project runner
    starts them, and one line says so."""
    if not forking():
        return
    from multiprocessing import forkserver

    _context()
    try:
        forkserver.ensure_running()
    except OSError as err:  # e.g. its socket's path, in a long TMPDIR, over the limit of 107
        _enabled.clear()
        print(f"{who}: each step starts a new interpreter: the warm server could not start "
              f"({err}; a shorter TMPDIR fixes a path too long)", file=sys.stderr, flush=True)


def use_server(worth_it: bool) -> None:
    """Keep forking this process's steps only if `worth_it` (`worth_a_server`); otherwise they
    start as new interpreters, and the server, started before the cache was read, ends with
    this process once it has loaded."""
    if not worth_it:
        _enabled.clear()


def run_forked(project: Path, step: str, parameters: dict[str, str], run_id: str) -> int:
    """Run one step in a process forked from the warm server, inside its existing run
    `run_id`; returns the exit code its own process would have had (a signal counts as 1).
    A run the step left RUNNING (a crash, a signal) is closed FAILED, as `mlflow.projects`
    does when a step's process dies."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    # where `mlflow.projects` would record its "local" backend: say what ran it instead
    client.set_tag(run_id, "mlflow.project.backend", "forked")
    with tempfile.TemporaryDirectory() as storage:
        argv = argv_or_fail(client, project, step, parameters, run_id, storage)
        if argv is None:
            return 2
        sys.stdout.flush()
        sys.stderr.flush()
        process = _context().Process(target=forked_step, name=f"step-{step}",
                                     args=(step, argv, {**os.environ, "MLFLOW_RUN_ID": run_id}))
        process.start()
        try:
            process.join()
        except KeyboardInterrupt:  # the step had the same Ctrl-C: give it a moment to close
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join()
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "FAILED")  # as mlflow.projects marks it
            raise
    code = process.exitcode
    if code < 0:  # killed by a signal
        print(f"{step}: its process died of signal {-code}", file=sys.stderr)
        code = 1
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, "FAILED" if code else "FINISHED")
    return code


def forked_step(step: str, argv: list[str], environment: dict[str, str]) -> None:
    """In the forked process: main's environment as it is now (the server has the one it was
    started with), then the step as `python -m steps.<step> argv` would run it."""
    os.environ.clear()
    os.environ.update(environment)
    code = exit_code(step, argv)
    sys.stdout.flush()
    # A forked process ends in os._exit, which skips the exit handlers an interpreter runs
    # (the step's scratch folder, MLflow's flushes): run them as the step's own process would.
    # The server registered only those its imports did, as a fresh step process would have.
    atexit._run_exitfuncs()
    sys.exit(code)
