"""Shared fixtures: the repository's sample of real AG News rows, a tiny random BERT, an
isolated tracking store, the stand-in Hub. Tests under tests/e2e run the entry points and are
marked `e2e`: `pytest -m "not e2e"` is the quick loop."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hub_fixtures import hub, silent_endpoint, warm_home  # noqa: F401  (session fixtures)
from support import AG_NEWS, ROOT, module_store

# Under pytest-xdist each worker starts processes of its own: one math thread per process
# keeps two workers from running four threads on two cores (torch, OpenMP and BLAS default
# to a thread per core in every process). Set before any test imports torch or numpy.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")


@pytest.fixture(scope="session")
def ag_news() -> Path:
    """The committed sample of real AG News rows (1,600 train, 1,200 test; SOURCES.md there)."""
    return AG_NEWS


@pytest.fixture(scope="session", autouse=True)
def own_cache_home(tmp_path_factory):
    """The precision probe remembers its answer under XDG_CACHE_HOME: a fresh one per test
    session, shared by the steps the tests start, so no run of the suite reads another's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def close_figures():
    """Plot functions return open Figures (the caller logs or closes them); close what a test
    left, since one xdist worker runs many modules and pyplot keeps every open figure."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tiny_model import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def tiny_scored(tiny_model, ag_news):
    """The tiny model with a seeded head, its tokenizer, 1,000 real texts, their ids and
    PyTorch's class of each: enough rows for a runtime that agrees exactly to clear the parity
    gate's bound (the runtimes' tests)."""
    import torch
    from support import sample_texts

    from agnews.model.batching import predict_logits
    from agnews.model.pretrained import load_classifier, load_tokenizer

    torch.manual_seed(0)
    model = load_classifier(str(tiny_model)).eval()
    tokenizer = load_tokenizer(str(tiny_model))
    texts = sample_texts(ag_news)[:1000]
    ids = tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    labels = predict_logits(model, ids, 16, tokenizer.pad_token_id).argmax(axis=1)
    return model, tokenizer, texts, ids, labels


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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Mark tests/e2e `e2e`, and group tests for pytest-xdist (`--dist loadgroup`): a module's
    tests run on one worker, so its module fixtures are built once, and every test of the
    session pipeline runs on the worker that built it. The modules that use the stand-in Hub
    share a group too, so it and its warm cache are built once."""
    hub_modules = {item.module.__name__ for item in items if "hub" in item.fixturenames}
    for item in items:
        if "e2e" in Path(str(item.fspath)).relative_to(ROOT / "tests").parts[:1]:
            item.add_marker(pytest.mark.e2e)
        group = ("session-pipeline" if "session_pipeline" in item.fixturenames
                 else "hub-standin" if item.module.__name__ in hub_modules
                 else item.module.__name__)
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_xdist_node_collection_finished(node, ids):
    """Under `--dist loadgroup` each test id a worker collects carries its group (`...@group`):
    that is how pytest-xdist keeps a group on one worker. Where a pytest and pytest-xdist pair
    loses it (pytest-dev/pytest-xdist#1386) the session pipeline and every module's fixtures
    would be built on each worker, silently: stop and say so instead."""
    if node.config.getvalue("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit("pytest-xdist does not group tests on this pytest (pytest-xdist#1386): "
                    "install requirements-dev.txt's pins, or run with -n 0", returncode=4)
