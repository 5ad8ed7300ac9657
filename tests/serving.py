"""`mlflow models serve` of a registered model, asked over HTTP as a client would."""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

TEXTS = ["Oil prices climb as supply tightens", "Striker scores twice in derby win",
         "New chip doubles battery life"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float, log=None) -> None:
    """Until `url` answers 200; fails with the process's output if it exits first."""
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            output = log.read_text() if log else (process.stdout.read() if process.stdout else "")
            raise AssertionError(f"{process.args} exited with {process.returncode}: "
                                 f"{output[-3000:]}")
        if time.time() > deadline:
            raise AssertionError(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(1)


@contextlib.contextmanager
def served(model_uri: str, env: dict[str, str], cwd, *flags: str,
           process: bool = False) -> Iterator:
    """`mlflow models serve -m model_uri *flags` (tracking store from `env`) while the block
    runs; yields its base URL (with `process`, the URL and the server's Popen). The server is
    stopped afterwards."""
    port = free_port()
    # its output to a file: a pipe nobody reads would block a server that logs every request
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "serve.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), *flags],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"http://127.0.0.1:{port}/ping", server, 180, Path(log.name))
            url = f"http://127.0.0.1:{port}"
            yield (url, server) if process else url
        finally:
            server.terminate()
            server.wait(timeout=30)


def invoke(url: str, body: bytes, timeout: float = 60) -> tuple[int, dict]:
    """POST `body` to /invocations; the status and the JSON answer (errors included)."""
    request = urllib.request.Request(f"{url}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ask_served_model(model_uri: str, env: dict[str, str], cwd, texts=TEXTS) -> list:
    """Serve `model_uri`, post `texts` to /invocations and return the predictions."""
    with served(model_uri, env, cwd) as url:
        status, answer = invoke(url, json.dumps({"inputs": texts}).encode())
    assert status == 200, answer
    return answer["predictions"]
