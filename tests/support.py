"""Helpers the tests share (plain functions; the fixtures live in the conftest files): the
project's folder, the repository's AG News sample, a step process's environment, a copy of
the project, small text frames and a module's own tracking store."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT / "data" / "ag_news_sample"
HUB_NETWORK_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "TRANSFORMERS_OFFLINE"}
# A `main` or `sweep` started with this runs its steps in its own process
# (agnews.tracking.inline): the same runs, without each step's start-up. Tests of what main
# decides use it; tests where the step's own process matters (a crash, a launcher, the Hub's
# environment, the session pipeline users' way) leave it out.
INLINE_STEPS = {"AGNEWS_INLINE_STEPS": "1"}


@contextlib.contextmanager
def module_store(tmp: Path):
    """A sqlite tracking store in `tmp` for a module-scoped fixture (monkeypatch is
    function-scoped): yields (uri, experiment id) and restores the environment after."""
    import mlflow

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("module", artifact_location=str(tmp / "artifacts"))
    mp.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    try:
        yield uri, experiment
    finally:
        mp.undo()
        mlflow.set_tracking_uri(None)


def texts_frame(labels: list[int], prefix: str = "story") -> pd.DataFrame:
    """A small `text`/`label` frame with distinct texts."""
    return pd.DataFrame({"text": [f"{prefix} {i} about topic {label}"
                                  for i, label in enumerate(labels)],
                         "label": labels})


def sample_texts(ag_news: Path) -> list[str]:
    """Every title and description of the sample (train, then test) as the steps join them."""
    rows = pd.concat(pd.read_csv(ag_news / f"{s}.csv", header=None) for s in ("train", "test"))
    return (rows[1] + " " + rows[2]).tolist()


def subprocess_env() -> dict[str, str]:
    """The environment for a step run as its own process: this venv first on PATH; Hub
    settings and MLflow's logging level of the machine running the tests left out (tests that
    need them set their own), and steps in their own processes unless a test adds
    INLINE_STEPS."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HF_") and k.upper() not in HUB_NETWORK_VARS
           and k not in INLINE_STEPS  # each test says how its steps run
           and k != "MLFLOW_LOGGING_LEVEL"}  # tests read the run ids `mlflow run` logs
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def copy_project(dest: Path) -> Path:
    """The project's runnable files copied to `dest` (a folder a test may edit or fill)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("MLproject", "conda.yaml", "requirements.txt"):
        shutil.copy(ROOT / name, dest / name)
    for folder in ("steps", "agnews"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


class TrialInProcess:
    """The ONNX trial process (`agnews.model.onnx_trial`) as `OnnxTrials` drives it, run in
    this process instead: for tests that patch what it uses (a clock, a missing runtime).
    Stands in for `agnews.model.onnx_export.start_process`."""

    returncode = 0

    def __init__(self, command: list[str]):
        self.args = command[3:]  # [python, -m, agnews.model.onnx_trial, *args]

    def poll(self) -> int:
        return 0

    def communicate(self, text: str, timeout=None) -> tuple[str, str]:
        import io

        from agnews.model import onnx_trial

        onnx_trial.main(self.args, stdin=io.StringIO(text))
        return "", ""


SCORE_ALONE = """
import json, sys
from agnews.model.logged_model import load_logged_classifier, score_texts
clf = load_logged_classifier(sys.argv[1])
probs = score_texts(clf, json.loads(sys.argv[2]), 8)
print(json.dumps({"scorer": clf.scorer, "probs": probs.tolist(), "tags": clf.runtime.tags(),
                  "loaded": sorted(m for m in ("torch", "transformers", "openvino.tools.ovc")
                                   if m in sys.modules)}))
"""


def score_alone(model_uri: str, texts: list[str]) -> dict:
    """A logged model opened and scored in a fresh process, as a step would: its scorer, the
    probabilities, its runtime's tags and which of torch, transformers and OpenVINO's
    conversion tools it imported."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", SCORE_ALONE, model_uri, json.dumps(texts)],
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
