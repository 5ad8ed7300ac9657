"""The default path, as users take it: Hub ids and no -P at all.

Against a local stand-in for the Hub (tests/hub_standin.py) that serves the two default repos
in their real shape, the Hugging Face libraries download and cache with their own code, so
these tests meet the Hub's cache layouts, TinyBERT's legacy config and the data set's
ClassLabel exactly as users do: `main` online from a cold cache, `main` under HF_HUB_OFFLINE
from the cache a run left, and one-line failures within 60 s when neither the Hub nor the
cache has what is asked for.
"""
from __future__ import annotations

import subprocess
import time

import pytest
from hub_fixtures import DATA_SHA, DATASET_ID, MODEL_ID, MODEL_SHA, hub_env, python
from mlflow.tracking import MlflowClient
from runs import mlflow_run_args
from support import INLINE_STEPS, ROOT, module_store

from agnews.tracking.step_cache import STEPS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with module_store(tmp_path_factory.mktemp("hub-store")) as (uri, experiment):
        yield {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}


# The Hub ids and revisions stay the defaults; fewer rows and one epoch where a test is about
# where main finds them, not about what it trains (the online run trains on the defaults).
SMALL = {"train_size": 100, "val_size": 40, "test_size": 80, "epochs": 1}


def run_main(env: dict, store: dict, timeout: int = 600,
             params: dict | None = None) -> subprocess.CompletedProcess:
    env = {**env, "MLFLOW_TRACKING_URI": store["uri"]}
    return python(mlflow_run_args("main", params or {}, ROOT, store["experiment_id"])[1:], env,
                  timeout)


def finished_family(store: dict, proc) -> tuple:
    """The newest parent run and the step runs it used (its children, or the cached runs it
    reused), all FINISHED."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client = store["client"]
    runs = client.search_runs([store["experiment_id"]], order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    steps = {s: client.get_run(parent.data.tags[f"step.{s}.run_id"]) for s in STEPS}
    assert all(run.info.status == "FINISHED" for run in steps.values())
    return parent, steps


@pytest.fixture(scope="module")
def online_run(hub, store, tmp_path_factory):
    """The defaults online from a cold cache; the steps inside main's process, which has the
    Hub's environment from the start (INLINE_STEPS)."""
    home = tmp_path_factory.mktemp("hf-home-cold")
    proc = run_main({**hub_env(home, hub.url), **INLINE_STEPS}, store)
    return finished_family(store, proc), proc, home


def test_default_main_online_pins_records_and_caches_the_hub_commits(online_run):
    (parent, children), proc, home = online_run
    assert parent.data.params["data"] == DATASET_ID and parent.data.params["model"] == MODEL_ID
    assert parent.data.tags["data.revision"] == DATA_SHA
    assert parent.data.tags["model.revision"] == MODEL_SHA
    assert children["ingest"].data.params["data_revision"] == DATA_SHA
    assert children["ingest"].data.tags["data.source"] == "hub"
    for step in ("tokenize", "train"):
        assert children[step].data.params["model_revision"] == MODEL_SHA
        assert children[step].data.tags["model.revision"] == MODEL_SHA
    assert children["ingest"].data.tags["data_fingerprint"] == f"id:{DATASET_ID}@{DATA_SHA}"
    assert children["train"].data.tags["precision_reason"]
    # auto, resolved on the device trained on: this CPU splits batches at 512 tokens
    assert children["train"].data.params["micro_batch_tokens"] == "auto"
    assert children["train"].data.tags["micro_batch_tokens_used"] == "512"
    assert children["tokenize"].data.tags["tokenizer.library"] == "tokenizers"  # vocab.txt only
    assert (home / "hub" / "models--huawei-noah--TinyBERT_General_4L_312D").is_dir()


def test_default_main_records_hub_datasets_mlflow_can_resolve(online_run):
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    (parent, children), _, _ = online_run
    inputs = {d.dataset.name: d.dataset for d in children["ingest"].inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    for name, dataset in inputs.items():
        assert dataset.source_type == "hugging_face" and dataset.digest
        source = get_dataset_source_from_json(dataset.source, dataset.source_type)
        assert (source.path, source.revision) == (DATASET_ID, DATA_SHA)
        assert source.split == ("test" if name == "test" else "train")


def test_default_main_runs_offline_from_the_cache_a_run_left(online_run, store):
    _, _, home = online_run
    start = time.monotonic()
    proc = run_main(hub_env(home, offline=True), store)
    parent, children = finished_family(store, proc)
    assert "(from the local cache)" in proc.stdout
    assert parent.data.tags["data.source"] == parent.data.tags["model.source"] == "cache"
    assert parent.data.tags["model.revision"] == MODEL_SHA
    # the same commits and parameters: every step is the cached run of the online main
    (_, online_steps), _, _ = online_run
    assert all(parent.data.tags.get(f"step.{s}.cached") == "true" for s in STEPS)
    assert {s: r.info.run_id for s, r in children.items()} == {
        s: r.info.run_id for s, r in online_steps.items()}
    assert time.monotonic() - start < 120


def test_default_main_offline_from_a_warm_cache_runs_every_step(warm_home, tmp_path):
    """HF_HUB_OFFLINE set before main starts reaches every step alike, so they run inside
    main's process (INLINE_STEPS); the hanging Hub below needs steps of their own (main's
    switch to offline reaches only a process started after it)."""
    with module_store(tmp_path) as (uri, experiment):
        own = {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}
        proc = run_main({**hub_env(warm_home, offline=True), **INLINE_STEPS}, own,
                        params=SMALL)
        parent, children = finished_family(own, proc)
    assert not any(parent.data.tags.get(f"step.{s}.cached") for s in STEPS)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children.values())
    assert children["ingest"].data.tags["data.source"] == "cache"
    assert children["ingest"].data.params["data_revision"] == DATA_SHA
    assert children["train"].data.tags["model.source"] == "cache"
    assert children["train"].data.metrics["val_accuracy"] >= 0


def test_default_main_with_a_hub_that_hangs_runs_from_a_warm_cache(warm_home, tmp_path,
                                                                  silent_endpoint):
    """No HF_HUB_OFFLINE: main finds the Hub silent, pins from the cache, and the steps go
    offline instead of each waiting for the Hub again."""
    env = hub_env(warm_home, silent_endpoint.url, HF_HUB_ETAG_TIMEOUT="3")
    with module_store(tmp_path) as (uri, experiment):
        own = {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}
        proc = run_main(env, own, params=SMALL)
        parent, children = finished_family(own, proc)
    assert "did not answer" in proc.stdout and "using the local Hugging Face cache" in proc.stdout
    assert parent.data.tags["data.source"] == parent.data.tags["model.source"] == "cache"
    assert children["ingest"].data.params["data_revision"] == DATA_SHA
    # main asked the silent Hub for each commit once, and no step asked it anything: every
    # other request is huggingface_hub's own registry fetch, made with main's first lookups
    lookups = sorted(r for r in silent_endpoint.requests if "/revision/" in r)
    assert lookups == [f"GET /api/datasets/{DATASET_ID}/revision/main HTTP/1.1",
                       f"GET /api/models/{MODEL_ID}/revision/main HTTP/1.1"]
    assert all(r in lookups or r.startswith("GET /api/agent-harnesses ")
               for r in silent_endpoint.requests), silent_endpoint.requests


@pytest.mark.parametrize("setting", ["offline", "unreachable"])
def test_cold_cache_stops_main_in_one_line_within_60_s(store, tmp_path, setting, silent_endpoint):
    env = (hub_env(tmp_path, offline=True) if setting == "offline"
           else hub_env(tmp_path, silent_endpoint.url))
    before = len(store["client"].search_runs([store["experiment_id"]]))
    start = time.monotonic()
    proc = run_main(env, store, timeout=120)
    assert time.monotonic() - start < 60
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("main: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert f"dataset '{DATASET_ID}' is not in the local Hugging Face cache" in errors[0]
    assert "-P data=<folder>" in errors[0]
    assert ("unset HF_HUB_OFFLINE" if setting == "offline" else "did not answer") in errors[0]
    # nothing started: only main's own run (failed) was added
    assert len(store["client"].search_runs([store["experiment_id"]])) <= before + 1
