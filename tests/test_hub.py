"""The default path, as users take it: Hub ids and no -P at all.

Against a local stand-in for the Hub (tests/hub_standin.py) that serves the two default repos
in their real shape, the Hugging Face libraries download and cache with their own code, so
these tests meet the Hub's cache layouts, TinyBERT's legacy config and the data set's
ClassLabel exactly as users do: `main` online from a cold cache, `main` under HF_HUB_OFFLINE
from the cache a run left, and one-line failures within 60 s when neither the Hub nor the
cache has what is asked for.
"""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, module_store, subprocess_env
from hub_standin import DATASET_ID, MODEL_ID, HubStandin, Repo, ag_news_files, tinybert_files
from mlflow.tracking import MlflowClient
from tiny_model import standin_model_dir

from steps.main import STEPS

MODEL_SHA = hashlib.sha1(b"tinybert").hexdigest()
DATA_SHA = hashlib.sha1(b"ag_news").hexdigest()
RESOLVE = """
import json, sys
from steps.errors import UserError
from steps.hub import resolve
try:
    print(json.dumps(resolve(*sys.argv[1:]).__dict__))
except UserError as err:
    print("UserError: " + str(err))
"""


@pytest.fixture(scope="module")
def hub(ag_news):
    """The stand-in Hub with real AG News rows (enough for the default sizes) and a tiny
    TinyBERT-shaped model."""
    from steps.data_sources import read_csv

    train = read_csv(ag_news / "train.csv").sample(n=1400, random_state=0)
    test = read_csv(ag_news / "test.csv").sample(n=600, random_state=0)
    vocab = (Path(standin_model_dir()) / "vocab.txt").read_bytes()
    repos = {("model", MODEL_ID): Repo(tinybert_files(vocab), MODEL_SHA),
             ("dataset", DATASET_ID): Repo(ag_news_files(train, test), DATA_SHA),
             ("model", "someone/notes"): Repo({"README.md": b"# not a model"}, MODEL_SHA)}
    with HubStandin(repos) as standin:
        yield standin


def hub_env(hf_home: Path, endpoint: str | None = None, offline: bool = False, **extra):
    env = subprocess_env()
    env["HF_HOME"] = str(hf_home)
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def python(args: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def resolve(env: dict, repo_id: str, kind: str, revision: str = "main"):
    proc = python(["-c", RESOLVE, repo_id, kind, revision], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.strip().splitlines()[-1]
    return out if out.startswith("UserError") else json.loads(out)


@pytest.fixture(scope="module")
def warm_home(hub, tmp_path_factory) -> Path:
    """An HF_HOME as an earlier online run leaves it: filled by the project's own loaders,
    through datasets' and transformers' downloads, from the stand-in Hub."""
    home = tmp_path_factory.mktemp("hf-home-warm")
    code = ("from steps.data_sources import load_source\n"
            "from steps.pretrained import load_classifier, load_tokenizer\n"
            f"load_source('{DATASET_ID}'); load_tokenizer('{MODEL_ID}'); "
            f"load_classifier('{MODEL_ID}')")
    proc = python(["-c", code], hub_env(home, hub.url))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home


@pytest.fixture
def silent_endpoint():
    """A Hub that accepts connections and never answers (a hung proxy or firewall)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_warm_cache_is_in_the_hubs_own_layouts(warm_home):
    from huggingface_hub import scan_cache_dir

    repos = {(r.repo_type, r.repo_id): r for r in scan_cache_dir(warm_home / "hub").repos}
    model = repos[("model", MODEL_ID)]
    assert {r.commit_hash for r in model.revisions} == {MODEL_SHA}
    assert {f.file_name for r in model.revisions for f in r.files} == {
        "config.json", "pytorch_model.bin", "vocab.txt"}
    prepared = list((warm_home / "datasets" / "fancyzhx___ag_news").glob("*/*/*/dataset_info.json"))
    assert [p.parent.name for p in prepared] == [DATA_SHA]
    info = json.loads(prepared[0].read_text())
    assert info["features"]["label"]["names"] == ["World", "Sports", "Business", "Sci/Tech"]


def test_resolve_asks_the_hub_at_its_endpoint_port(hub, tmp_path):
    pin = resolve(hub_env(tmp_path, hub.url), MODEL_ID, "model")
    assert (pin["sha"], pin["online"]) == (MODEL_SHA, True)
    assert ("GET", f"/api/models/{MODEL_ID}/revision/main") in hub.requests


def test_resolve_goes_through_the_proxy(hub, tmp_path):
    # The endpoint's host does not resolve: only the proxy can answer.
    env = hub_env(tmp_path, "http://hub.invalid", HTTP_PROXY=hub.url)
    assert resolve(env, DATASET_ID, "dataset")["sha"] == DATA_SHA


@pytest.mark.parametrize("repo_id, kind, revision, message", [
    ("no-such/model", "model", "main", "'no-such/model' is not a model on the Hugging Face Hub"),
    (MODEL_ID, "model", "v9", "revision 'v9' does not exist for model"),
    ("someone/notes", "model", "main", "has no config.json, so it is not a transformers model"),
])
def test_wrong_ids_and_revisions_get_one_line(hub, tmp_path, repo_id, kind, revision, message):
    assert message in resolve(hub_env(tmp_path, hub.url), repo_id, kind, revision)


def test_unreachable_hub_falls_back_to_a_warm_cache(warm_home, silent_endpoint):
    env = hub_env(warm_home, silent_endpoint, HF_HUB_ETAG_TIMEOUT="2")
    for repo_id, kind, sha in ((MODEL_ID, "model", MODEL_SHA), (DATASET_ID, "dataset", DATA_SHA)):
        pin = resolve(env, repo_id, kind)
        assert (pin["sha"], pin["online"]) == (sha, False)
        assert "did not answer" in pin["note"]


def test_offline_cache_must_hold_a_pinned_data_revision(warm_home):
    other = "f" * 40
    out = resolve(hub_env(warm_home, offline=True), DATASET_ID, "dataset", other)
    assert f"holds revision {DATA_SHA}" in out and f"-P data_revision={DATA_SHA}" in out


def test_legacy_tinybert_config_loads_as_bert_with_its_weights(warm_home, hub):
    code = (f"import torch\nfrom steps.pretrained import load_classifier, load_tokenizer\n"
            f"m = load_classifier('{MODEL_ID}')\nt = load_tokenizer('{MODEL_ID}')\n"
            "from huggingface_hub import hf_hub_download\n"
            f"w = torch.load(hf_hub_download('{MODEL_ID}', 'pytorch_model.bin'),\n"
            "               weights_only=True)\n"
            "q = 'bert.encoder.layer.1.attention.self.query.weight'\n"
            "assert torch.equal(m.state_dict()[q], w[q])\n"
            "assert m.config.model_type == 'bert' and m.config.num_labels == 4\n"
            "print(t.convert_ids_to_tokens(t('Oil Prices CLIMB')['input_ids']))")
    proc = python(["-c", code], hub_env(warm_home, offline=True))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "['[CLS]', 'oil', 'prices', 'climb', '[SEP]']"


# --- the default `main`, through `mlflow run`, with no -P ----------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with module_store(tmp_path_factory.mktemp("hub-store")) as (uri, experiment):
        yield {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}


def run_main(env: dict, store: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**env, "MLFLOW_TRACKING_URI": store["uri"]}
    return python(["-m", "mlflow", "run", str(ROOT), "-e", "main", "--env-manager", "local",
                   "--experiment-id", store["experiment_id"]], env, timeout)


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
    home = tmp_path_factory.mktemp("hf-home-cold")
    proc = run_main(hub_env(home, hub.url), store)
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
    with module_store(tmp_path) as (uri, experiment):
        own = {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}
        proc = run_main(hub_env(warm_home, offline=True), own)
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
    env = hub_env(warm_home, silent_endpoint, HF_HUB_ETAG_TIMEOUT="3")
    with module_store(tmp_path) as (uri, experiment):
        own = {"uri": uri, "experiment_id": experiment, "client": MlflowClient(uri)}
        start = time.monotonic()
        proc = run_main(env, own)
        parent, children = finished_family(own, proc)
    assert "did not answer" in proc.stdout and "using the local Hugging Face cache" in proc.stdout
    assert parent.data.tags["data.source"] == parent.data.tags["model.source"] == "cache"
    assert children["ingest"].data.params["data_revision"] == DATA_SHA
    assert time.monotonic() - start < 150


@pytest.mark.parametrize("setting", ["offline", "unreachable"])
def test_cold_cache_stops_main_in_one_line_within_60_s(store, tmp_path, setting, silent_endpoint):
    env = (hub_env(tmp_path, offline=True) if setting == "offline"
           else hub_env(tmp_path, silent_endpoint))
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
