#!/usr/bin/env python3
"""Serving under load: `mlflow models serve` of a model, asked for 1, 100, 10,000 and 50,000
texts in one request, then by several clients at once; prints rows/s and the serving
worker's peak resident memory for each.

    python benchmarks/serving_load.py --data <AG News folder> [--model-uri URI] \
        [--sizes 1,100,10000,50000] [--clients 4 --client-rows 10000]

The model defaults to the champion of MLFLOW_TRACKING_URI; pass a version logged before the
pyfunc (MLflow's transformers flavor) as `--model-uri` to compare against it side by side. The
texts are AG News rows of `--data` (repeated when fewer than asked for), sent as
{"inputs": [...]}. Peak memory is the uvicorn worker's VmHWM, reset before each request
(/proc/<pid>/clear_refs) where Linux allows it. Run by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from serving import served  # noqa: E402  (the tests' own helper: one way to start a server)
from support import sample_texts, subprocess_env  # noqa: E402

from agnews.tracking.memory import peak_rss_mb as peak_mb  # noqa: E402


def worker_pid(parent: int) -> int:
    """The uvicorn worker under `mlflow models serve` (the process that scores)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for child in map(int, children):
        cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        grand = Path(f"/proc/{child}/task/{child}/children").read_text().split()
        if grand:  # uvicorn's parent with its worker(s)
            return int(grand[0])
        if b"uvicorn" in cmd or b"scoring_server" in cmd:
            return child
    raise RuntimeError(f"no scoring process under {parent}")


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def ask(url: str, texts: list[str], timeout: float) -> float:
    body = json.dumps({"inputs": texts}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as r:
        answer = json.loads(r.read())
    assert len(answer["predictions"]) == len(texts)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "ag_news_sample")
    parser.add_argument("--model-uri", default="models:/agnews-classifier@champion")
    parser.add_argument("--sizes", default="1,100,10000,50000")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--client-rows", type=int, default=10_000)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds a request may take")
    args = parser.parse_args()
    pool = sample_texts(args.data)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    need = max(sizes + [args.client_rows])
    texts = (pool * (need // len(pool) + 1))[:need]
    with served(args.model_uri, subprocess_env(), ROOT, "-t", str(args.timeout),
                process=True) as (url, server):
        pid = worker_pid(server.pid)
        ask(url, texts[:8], args.timeout)  # warm: the first request pays lazy set-up
        print(f"model {args.model_uri}; texts from {args.data}; worker pid {pid}, "
              f"{peak_mb(pid):.0f} MB after start")
        print("\n| texts per request | clients | seconds | rows/s | worker peak RSS (MB) |")
        print("|---|---|---|---|---|", flush=True)
        for size in sizes:
            exact = reset_peak(pid)
            seconds = ask(url, texts[:size], args.timeout)
            print(f"| {size:,} | 1 | {seconds:.2f} | {size / seconds:,.0f} | "
                  f"{peak_mb(pid):,.0f}{'' if exact else ' (peak so far)'} |", flush=True)
        if args.clients > 1:
            exact = reset_peak(pid)
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as clients:
                list(clients.map(lambda _: ask(url, texts[:args.client_rows], args.timeout),
                                 range(args.clients)))
            seconds = time.perf_counter() - start
            rows = args.clients * args.client_rows
            print(f"| {args.client_rows:,} each | {args.clients} | {seconds:.2f} | "
                  f"{rows / seconds:,.0f} | {peak_mb(pid):,.0f}"
                  f"{'' if exact else ' (peak so far)'} |", flush=True)


if __name__ == "__main__":
    main()
