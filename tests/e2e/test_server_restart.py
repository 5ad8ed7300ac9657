"""Runs that outlive their tracking server's outage, through real processes: the team server
(`deploy/team-server.sh` on PostgreSQL) is stopped while `train` trains and started again.

About 10 s down: a `main` and a sweep's trial, training at the time, ride over it on MLflow's
client retries (the project's own setting, `agnews.tracking.server`) and finish with every
epoch, every step point and every artifact. Down for good: `main` ends with one line naming the
server and what to do, and the same `main` run again once the server is back resumes train
from its checkpoint.
"""
from __future__ import annotations

import math
import subprocess
import threading
import time

import pytest
from mlflow.tracking import MlflowClient
from runs import EPOCH_METRICS, STEP_ARTIFACTS, artifact_paths, mlflow_run_args
from support import INLINE_STEPS, copy_project, subprocess_env
from team_server import TeamServer

from agnews.tracking.step_cache import STEPS

# log_every_steps=1: train calls the server after every optimiser step, so an outage that
# starts while it trains is met by train itself, not by a later step
TRAIN = {"train_size": 96, "val_size": 12, "test_size": 24, "epochs": 3, "train_batch_size": 8,
         "log_every_steps": 1, "learning_rate": 3e-3, "min_test_accuracy": 0, "min_test_f1": 0}
SEARCHED = ("epochs", "train_batch_size", "learning_rate")  # a sweep's space sets these
STEPS_PER_RUN = TRAIN["epochs"] * math.ceil(TRAIN["train_size"] / TRAIN["train_batch_size"])


class Watched:
    """A process whose output a thread reads line by line as it comes."""

    def __init__(self, args: list[str], cwd, env: dict[str, str]):
        self.process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None or self.reader.is_alive(), self.output()[-3000:]
            assert time.monotonic() < deadline, f"no '{text}' within {seconds} s: " \
                                                f"{self.output()[-3000:]}"
            time.sleep(0.05)

    def finish(self, seconds: float) -> tuple[int, str]:
        code = self.process.wait(timeout=seconds)
        self.reader.join(timeout=30)
        return code, self.output()

    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    server = TeamServer(tmp_path_factory.mktemp("restart"), workers=1)  # restarts sooner
    try:
        server.start()
        yield server
    finally:
        server.drop()


def down_for(server: TeamServer, seconds: float) -> float:
    """Stop the server, wait, start it again; how long it did not answer."""
    stopped = time.monotonic()
    server.stop()
    time.sleep(seconds)
    server.start()
    return time.monotonic() - stopped


def check_train_run(client, run_id: str) -> None:
    """FINISHED, every epoch's metrics once, every per-step point once, the plots."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED", run_id
    for name in EPOCH_METRICS:
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert steps == list(range(1, TRAIN["epochs"] + 1)), (name, steps)
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train_loss_step"))
    assert steps == list(range(1, STEPS_PER_RUN + 1)), steps
    assert set(STEP_ARTIFACTS["train"]) <= set(artifact_paths(client, run_id))


def check_main(client, output: str) -> str:
    """The main that printed `output`: FINISHED, each step FINISHED with its artifacts and train
    complete. Returns the train run's id."""
    parent_id = output.split("Run (ID '")[-1].split("'")[0]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and "test_accuracy" in parent.data.metrics
    for step in STEPS:
        run_id = parent.data.tags[f"step.{step}.run_id"]
        assert client.get_run(run_id).info.status == "FINISHED", step
        assert set(STEP_ARTIFACTS[step]) <= set(artifact_paths(client, run_id)), step
    check_train_run(client, parent.data.tags["step.train.run_id"])
    return parent.data.tags["step.train.run_id"]


def test_a_main_and_a_sweep_trial_ride_over_a_server_restart(team, tiny_model, ag_news,
                                                              tmp_path):
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": team.url, **INLINE_STEPS}
    main = Watched(mlflow_run_args("main", {**TRAIN, "data": ag_news, "model": tiny_model,
                                            "seed": 61}, "."),
                   copy_project(tmp_path / "main"), env)
    sweep = Watched(mlflow_run_args("sweep", {
        **{k: v for k, v in TRAIN.items() if k not in SEARCHED},
        "data": ag_news, "model": tiny_model, "seed": 62, "n_trials": 1, "study": "restart",
        "space": f"epochs={TRAIN['epochs']} train_batch_size={TRAIN['train_batch_size']} "
                 "learning_rate=2e-3:4e-3:log",
        "registered_model": "restart-sweep"}, "."), copy_project(tmp_path / "sweep"), env)
    for process in (main, sweep):
        process.wait_for(f"train: epoch 1/{TRAIN['epochs']}", 300)
    down = down_for(team, 10)
    (main_code, main_out), (sweep_code, sweep_out) = main.finish(600), sweep.finish(600)
    assert main_code == 0, main_out[-4000:]
    assert sweep_code == 0, sweep_out[-4000:]
    # each was still training when the server went: it logged epochs after coming back
    for out in (main_out, sweep_out):
        assert f"train: epoch {TRAIN['epochs']}/{TRAIN['epochs']}" in out
    client = MlflowClient(team.url)
    check_main(client, main_out)
    sweep_parent = client.get_run(sweep_out.split("Run (ID '")[-1].split("'")[0])
    assert sweep_parent.info.status == "FINISHED"
    check_train_run(client, sweep_parent.data.tags["best_run"])
    print(f"server down {down:.0f} s (stopped, 10 s, started until /health answered)")


def test_a_server_gone_for_good_ends_main_with_one_line_and_main_resumes(team, tiny_model,
                                                                          ag_news, tmp_path):
    project = copy_project(tmp_path / "project")
    params = {**TRAIN, "data": ag_news, "model": tiny_model, "seed": 63}
    # one retry: the test need not wait out the default back-off (about two minutes a call)
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": team.url,
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    main = Watched(mlflow_run_args("main", params, "."), project, env)
    main.wait_for(f"train: epoch 1/{TRAIN['epochs']}", 300)
    team.stop()
    try:
        code, output = main.finish(600)
    finally:
        team.start()
    assert code != 0
    said = [line for line in output.splitlines() if "did not answer" in line]
    assert said and all(line.split(": error: the tracking server ")[1].startswith(
        f"{team.url} did not answer, or only with errors, after 1 retries")
        for line in said), output[-4000:]
    assert said[-1].startswith("main: error:") and "rerun the same command" in said[-1]
    assert "Traceback" not in output.split("=== Running command")[-1].split(said[-1])[0]
    checkpoints = list((project / ".checkpoints").glob("*/checkpoint.pt"))
    assert len(checkpoints) == 1  # epoch 1 was kept

    proc = subprocess.run(mlflow_run_args("main", params, "."), cwd=project,
                          env={**env, **INLINE_STEPS}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert "train: resuming from" in output
    # the train run the lost server left RUNNING, and the main that started it
    assert "main: train: marked 2 run(s) KILLED" in output
    check_main(MlflowClient(team.url), output)
    assert not checkpoints[0].parent.exists()  # the finished run is the record now
