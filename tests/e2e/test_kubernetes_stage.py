"""`deploy/kubernetes/submit.sh`, up to what can run without a cluster: its one-line errors,
the copy it sends (a Docker project naming the image), and that copy's `main` run as the
pod runs it (the entry point's command as MLflow computes it, in a run MLflow made first),
whose steps must not try to start Docker inside the image."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from mlflow.projects._project_spec import load_project
from mlflow.tracking import MlflowClient
from support import ROOT, subprocess_env

from agnews.tracking.step_cache import STEPS

SUBMIT = ROOT / "deploy" / "kubernetes" / "submit.sh"
IMAGE = "registry.example.com/agnews/base:1"


def submit(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SUBMIT), *args], cwd=ROOT, capture_output=True,
                          text=True, env={**subprocess_env(), **env}, timeout=120)


def test_without_an_image_or_a_server_it_stops_with_one_line():
    proc = submit("-e", "main")
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("submit: error: IMAGE is not set")
    proc = submit("-e", "main", IMAGE=IMAGE, MLFLOW_TRACKING_URI="sqlite:///mlflow.db")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "is not a server the pods can reach" in proc.stderr


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("k8s") / "stage"
    proc = submit("--stage-only", str(folder), IMAGE=IMAGE)
    assert proc.returncode == 0, proc.stderr
    return folder


def test_the_copy_is_a_docker_project_naming_the_image(stage):
    project = load_project(str(stage))
    assert project.docker_env["image"] == IMAGE
    assert set(project._entry_points) == set(load_project(str(ROOT))._entry_points)
    assert (stage / "steps" / "main.py").is_file() and (stage / "agnews" / "config.py").is_file()


def test_main_in_the_image_runs_its_steps_without_docker(stage, tmp_path, tiny_model, ag_news):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("k8s", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)  # as `mlflow run -b kubernetes` does before the Job
    params = {"data": str(ag_news), "model": str(tiny_model), "train_size": 40, "val_size": 12,
              "test_size": 24, "epochs": 1, "train_batch_size": 8}
    command = load_project(str(stage)).get_entry_point("main").compute_command(params, None)
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run.info.run_id,
           "MLFLOW_EXPERIMENT_ID": experiment, "PYTHONPATH": str(stage)}
    proc = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)), cwd=stage,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    parent = client.get_run(run.info.run_id)
    for step in STEPS:
        child = client.get_run(parent.data.tags[f"step.{step}.run_id"])
        assert child.info.status == "FINISHED", step
        assert child.data.tags.get("mlflow.project.env") != "docker", step
    assert (stage / ".in-image" / "MLproject").is_file()
    assert "docker_env" not in (stage / ".in-image" / "MLproject").read_text()
