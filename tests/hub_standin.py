"""A local stand-in for the Hugging Face Hub, serving the two default repos in their real shape.

The Hub cannot be reached from the test machines, but the default run talks to it. This
server answers the HTTP calls that huggingface_hub, transformers and datasets make for a
model and a parquet data set (repo info, file resolve with the Hub's commit and etag headers,
tree listings, the Hub's error codes), so those libraries download and fill their caches
with their own code, exactly as they do against huggingface.co. Written by hand because no
library offers a Hub to test against offline. It also answers as an HTTP proxy (absolute
request URLs), to check that HTTP(S)_PROXY is honoured.

The repos are built like the real ones:
- `huawei-noah/TinyBERT_General_4L_312D`: `config.json` without `model_type` and with
  TinyBERT's legacy fields, `pytorch_model.bin` with `bert.*` keys plus the distillation
  leftovers `fit_denses.*` and the pre-training heads, `vocab.txt`; nothing else (no
  tokenizer_config.json, no safetensors). Tiny: 2 layers, hidden size 32.
- `fancyzhx/ag_news`: a dataset card declaring `label` a ClassLabel of the four names, and
  `data/{train,test}-00000-of-00001.parquet` written by `datasets` itself from real AG News
  rows.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODEL_ID = "huawei-noah/TinyBERT_General_4L_312D"
DATASET_ID = "fancyzhx/ag_news"
LABEL_NAMES = ("World", "Sports", "Business", "Sci/Tech")


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HubStandin:
    """`with HubStandin(repos) as hub:` serves `repos` {(kind, id): Repo} at `hub.url`."""

    def __init__(self, repos: dict[tuple[str, str], Repo]):
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> HubStandin:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def send(self, code: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def answer(self):
                path = urlsplit(self.path).path  # absolute-form when used as a proxy
                hub.requests.append((self.command, path))
                self.send(*hub.route(path, "recursive=true" in self.path))

            do_GET = do_HEAD = do_POST = answer

        return Handler

    def route(self, path: str, recursive: bool) -> tuple:
        not_found = (404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)/tree/([^/]+)/?(.*)$", path)
        if m:
            repo = self.repos.get((m[1], m[2]))
            return not_found if repo is None else self.tree(repo, m[4].rstrip("/"), recursive)
        m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
        if m:
            repo = self.repos.get((m[1], m[2]))
            if repo is None:
                return not_found
            if m[3] not in (None, "main", repo.sha):
                return (404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"})
            body = {"id": m[2], "sha": repo.sha,
                    "siblings": [{"rfilename": name} for name in sorted(repo.files)]}
            return 200, json.dumps(body).encode(), {"Content-Type": "application/json"}
        m = re.match(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            repo = self.repos.get(("dataset" if m[1] else "model", m[2]))
            if repo is None:
                return not_found
            if m[4] not in repo.files:
                return 404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.sha}
            data = repo.files[m[4]]
            return 200, data, {"X-Repo-Commit": repo.sha, "ETag": f'"{_etag(data)}"'}
        return 404, b"", {}

    @staticmethod
    def tree(repo: Repo, folder: str, recursive: bool) -> tuple:
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for name, data in sorted(repo.files.items()):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix):].split("/")
            folders.update(prefix + "/".join(parts[:i]) for i in range(1, len(parts)))
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "path": name, "size": len(data),
                                "oid": hashlib.sha1(data).hexdigest()})
        entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                    for f in sorted(folders) if recursive or "/" not in f[len(prefix):]]
        if not entries and folder:
            return 404, b"", {"X-Error-Code": "EntryNotFound"}
        return 200, json.dumps(entries).encode(), {"Content-Type": "application/json"}


def tinybert_files(vocab: bytes) -> dict[str, bytes]:
    """A tiny model shaped as huawei-noah/TinyBERT_General_4L_312D ships: legacy config,
    `bert.*` weights plus distillation leftovers, a vocab file and nothing else."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    config = {"attention_probs_dropout_prob": 0.1, "cell": {}, "emb_size": 32,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32,
              "initializer_range": 0.02, "intermediate_size": 64,
              "max_position_embeddings": 512, "num_attention_heads": 2, "num_hidden_layers": 2,
              "pre_trained": "", "structure": [], "type_vocab_size": 2,
              "vocab_size": len(vocab.decode().splitlines())}
    torch.manual_seed(0)
    weights = dict(BertForPreTraining(BertConfig(**config)).state_dict())
    for layer in range(config["num_hidden_layers"] + 1):  # TinyBERT's hidden-state projections
        weights[f"fit_denses.{layer}.weight"] = torch.randn(64, 32)
        weights[f"fit_denses.{layer}.bias"] = torch.zeros(64)
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return {"config.json": json.dumps(config, indent=2).encode(),
            "pytorch_model.bin": buffer.getvalue(), "vocab.txt": vocab}


DATASET_CARD = """---
language:
- en
task_categories:
- text-classification
dataset_info:
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
%s
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
---
# AG News (test stand-in: real rows, fewer of them)
"""


def ag_news_files(train, test) -> dict[str, bytes]:
    """The data set repo from `text`/`label` (0-3) frames, parquet written by `datasets`."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(LABEL_NAMES))})
    files = {"README.md": (DATASET_CARD % "\n".join(
        f"          '{i}': {name}" for i, name in enumerate(LABEL_NAMES))).encode()}
    for split, frame in (("train", train), ("test", test)):
        buffer = io.BytesIO()
        datasets.Dataset.from_pandas(frame[["text", "label"]], features=features,
                                     preserve_index=False).to_parquet(buffer)
        files[f"data/{split}-00000-of-00001.parquet"] = buffer.getvalue()
    return files
