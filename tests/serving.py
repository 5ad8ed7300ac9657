"""`mlflow models serve` of a registered model, asked over HTTP as a client would."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

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


def ask_served_model(model_uri: str, env: dict[str, str], cwd, texts=TEXTS) -> list:
    """Serve `model_uri` with `mlflow models serve` (tracking store from `env`), post `texts`
    to /invocations and return the predictions; the server is stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, 180)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps({"inputs": texts}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
