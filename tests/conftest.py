"""Shared fixtures: the real AG News folder, a tiny random BERT, an isolated tracking store,
the stand-in Hub. Tests under tests/e2e start `mlflow run` or step processes and are marked
`e2e`: `pytest -m "not e2e"` is the quick loop."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news"
sys.path.insert(0, str(Path(__file__).parent))  # for tiny_model, hub_standin
HUB_NETWORK_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "TRANSFORMERS_OFFLINE"}


@pytest.fixture(scope="session")
def ag_news() -> Path:
    """The real AG News CSVs in ../shared, read in place (never copied into the repo)."""
    if not (AG_NEWS / "train.csv").is_file():
        pytest.fail(f"AG News data missing at {AG_NEWS}: the tests need ../shared beside the repo")
    return AG_NEWS


@pytest.fixture(scope="session", autouse=True)
def own_cache_home(tmp_path_factory):
    """The precision probe remembers its answer under XDG_CACHE_HOME: a fresh one per test
    session, shared by the steps the tests start, so no run of the suite reads another's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tiny_model import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A fresh sqlite tracking store and an experiment whose artifacts live in tmp_path."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("test", artifact_location=str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    yield experiment_id
    mlflow.set_tracking_uri(None)


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


@pytest.fixture(scope="module")
def champion(tmp_path_factory, tiny_model):
    """A tiny model logged and registered as agnews-classifier@champion in a store of the
    module's own, which is the tracking store while the module runs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.model.logged_model import log_classifier
    from agnews.model.pretrained import load_classifier, load_tokenizer

    tmp = tmp_path_factory.mktemp("champion")
    with module_store(tmp) as (uri, experiment):
        with mlflow.start_run(experiment_id=experiment):
            info = log_classifier(load_classifier(str(tiny_model)),
                                  load_tokenizer(str(tiny_model)), 32)
        version = mlflow.register_model(info.model_uri, "agnews-classifier").version
        MlflowClient(uri).set_registered_model_alias("agnews-classifier", "champion", version)
        yield {"uri": uri, "model_uri": info.model_uri, "tmp": tmp}


def texts_frame(labels: list[int], prefix: str = "story") -> pd.DataFrame:
    """A small `text`/`label` frame with distinct texts."""
    return pd.DataFrame({"text": [f"{prefix} {i} about topic {label}" for i, label in enumerate(labels)],
                         "label": labels})


def subprocess_env() -> dict[str, str]:
    """The environment for a step run as its own process: this venv first on PATH; Hub
    settings of the machine running the tests left out (tests that need them set their own)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HF_") and k.upper() not in HUB_NETWORK_VARS}
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


def pytest_collection_modifyitems(items):
    for item in items:
        if "e2e" in Path(str(item.fspath)).relative_to(ROOT / "tests").parts[:1]:
            item.add_marker(pytest.mark.e2e)


from hub_fixtures import hub, silent_endpoint, warm_home  # noqa: E402,F401  (session fixtures)
