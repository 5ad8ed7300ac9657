"""The Hugging Face Hub as the libraries meet it: pinning an id to a commit at the Hub's
endpoint, through a proxy, from the cache when the Hub does not answer, one-line errors for
wrong ids, TinyBERT's legacy config, and tokenize reading TinyBERT's vocabulary without
transformers. Against a local stand-in for the Hub (tests/hub_standin.py) whose downloads
fill HF_HOME with the libraries' own code.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from hub_fixtures import (
    DATA_SHA,
    DATASET_ID,
    MODEL_ID,
    MODEL_SHA,
    hub_env,
    python,
    resolve,
    tinybert_folder,
)
from support import sample_texts

from agnews.model.pretrained import load_tokenizer


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
    env = hub_env(warm_home, silent_endpoint.url, HF_HUB_ETAG_TIMEOUT="2")
    repos = ((MODEL_ID, "model", MODEL_SHA), (DATASET_ID, "dataset", DATA_SHA))
    with ThreadPoolExecutor(len(repos)) as pool:  # each waits out the silent Hub: at once
        pins = list(pool.map(lambda repo: resolve(env, repo[0], repo[1]), repos))
    for (_, _, sha), pin in zip(repos, pins, strict=True):
        assert (pin["sha"], pin["online"]) == (sha, False)
        assert "did not answer" in pin["note"]


def test_offline_cache_must_hold_a_pinned_data_revision(warm_home):
    other = "f" * 40
    out = resolve(hub_env(warm_home, offline=True), DATASET_ID, "dataset", other)
    assert f"holds revision {DATA_SHA}" in out and f"-P data_revision={DATA_SHA}" in out


def test_legacy_tinybert_config_loads_as_bert_with_its_weights(warm_home, hub):
    code = (f"import torch\nfrom agnews.model.pretrained import load_classifier, load_tokenizer\n"
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


FAST_IDS = """
import hashlib, json, sys
from agnews.model.fast_tokenizer import fast_tokenizer
from agnews.model.pretrained import locate
texts = json.load(open(sys.argv[1]))
ids = fast_tokenizer(locate(sys.argv[2]))(texts, truncation=True, max_length=32)["input_ids"]
print(hashlib.md5(json.dumps(ids).encode()).hexdigest())
"""


@pytest.mark.parametrize("where", ["cache", "online"])
def test_tokenize_reads_the_hubs_tinybert_without_transformers(where, warm_home, hub, tmp_path,
                                                                ag_news):
    """The `tokenizers`-only path finds TinyBERT's vocab.txt in the Hub's cache layout (and
    downloads it from a cold cache) and gives transformers' ids for the same files."""
    texts = sample_texts(ag_news)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    env = (hub_env(warm_home, offline=True) if where == "cache"
           else hub_env(tmp_path / "cold-home", hub.url))
    proc = python(["-c", FAST_IDS, str(tmp_path / "texts.json"), MODEL_ID], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same_files = load_tokenizer(str(tinybert_folder(tmp_path)))
    expected = same_files(texts, truncation=True, max_length=32)["input_ids"]
    assert proc.stdout.strip().splitlines()[-1] == \
        hashlib.md5(json.dumps(expected).encode()).hexdigest()
