"""The stand-in Hub for tests: the two default repos in their real shape, an HF_HOME the
libraries filled from it, and a Hub that never answers. Fixtures are registered in
conftest.py, so unit and end-to-end tests share one stand-in per session."""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hub_standin import DATASET_ID, MODEL_ID, HubStandin, Repo, ag_news_files, tinybert_files
from tiny_model import standin_model_dir

ROOT = Path(__file__).resolve().parents[1]

MODEL_SHA = hashlib.sha1(b"tinybert").hexdigest()
DATA_SHA = hashlib.sha1(b"ag_news").hexdigest()
RESOLVE = """
import json, sys
from agnews.errors import UserError
from agnews.hub import resolve
try:
    print(json.dumps(resolve(*sys.argv[1:]).__dict__))
except UserError as err:
    print("UserError: " + str(err))
"""


@pytest.fixture(scope="session")
def hub(ag_news):
    """The stand-in Hub with real AG News rows (enough for the default sizes) and a tiny
    TinyBERT-shaped model."""
    from agnews.data.tables import read_table

    train = read_table(ag_news / "train.csv").sample(n=1400, random_state=0)
    test = read_table(ag_news / "test.csv").sample(n=600, random_state=0)
    vocab = (Path(standin_model_dir()) / "vocab.txt").read_bytes()
    repos = {("model", MODEL_ID): Repo(tinybert_files(vocab), MODEL_SHA),
             ("dataset", DATASET_ID): Repo(ag_news_files(train, test), DATA_SHA),
             ("model", "someone/notes"): Repo({"README.md": b"# not a model"}, MODEL_SHA)}
    with HubStandin(repos) as standin:
        yield standin


def hub_env(hf_home: Path, endpoint: str | None = None, offline: bool = False, **extra):
    from support import subprocess_env

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


def tinybert_folder(folder: Path) -> Path:
    """The stand-in Hub's TinyBERT as a folder: as huawei-noah ships it, a legacy config.json,
    weights and vocab.txt only."""
    vocab = (Path(standin_model_dir()) / "vocab.txt").read_bytes()
    for name, content in tinybert_files(vocab).items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture(scope="session")
def warm_home(hub, tmp_path_factory) -> Path:
    """An HF_HOME as an earlier online run leaves it: filled by the project's own loaders,
    through datasets' and transformers' downloads, from the stand-in Hub."""
    home = tmp_path_factory.mktemp("hf-home-warm")
    code = ("from agnews.data.sources import load_source\n"
            "from agnews.model.pretrained import load_classifier, load_tokenizer\n"
            f"load_source('{DATASET_ID}'); load_tokenizer('{MODEL_ID}'); "
            f"load_classifier('{MODEL_ID}')")
    proc = python(["-c", code], hub_env(home, hub.url))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home


class SilentHub:
    """A Hub that accepts connections, reads each request and never answers (a hung proxy or
    firewall), recording each request's first line: what a test asserts on instead of how long
    a run took, which depends on how busy the machine is."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        self.held: list[socket.socket] = []  # open, unanswered, until the test ends
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed at teardown
                return
            self.held.append(conn)
            conn.settimeout(5)
            try:
                line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
            except OSError:
                line = ""
            self.requests.append(line)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_endpoint():
    hub = SilentHub()
    yield hub
    hub.close()


