#!/usr/bin/env python3
"""Real batches for the monitor, and its verdict on each, side by side.

From the AG News test split, leaving out the texts the model's evaluate run scored (its
reference), writes five batches: `in_distribution` (200 unseen test rows: must not be
flagged), `only_sports` (200 Sports rows: a shifted class mix), `titles_only` (200 titles
without their descriptions: a shifted source), `label_noise` (200 unseen rows, 30% of the
labels replaced by another class) and, with `--spanish FILE`, the sentences of a Spanish text
(another language). Then runs `mlflow run . -e monitor` on each and prints one table: every
check's value, its Holm-adjusted p-value and its verdict per batch.

    python benchmarks/drift_batches.py --data data/ag_news_sample --spanish <a Spanish text>

Uses the tracking store of MLFLOW_TRACKING_URI (default: the project's) and the champion,
or `--model-uri`. Run by hand; the test suite imports `make_batches` only.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ROWS = 200
NOISE = 0.3


def make_batches(test_csv: Path, reference_texts: set[str], out: Path, seed: int = 7,
                 rows: int = ROWS) -> dict[str, Path]:
    """Write the four batches of real texts the reference never held; returns their paths."""
    raw = pd.read_csv(test_csv, header=None, names=["label", "title", "desc"], dtype=str,
                      keep_default_na=False)
    raw["text"] = (raw["title"].str.strip() + " " + raw["desc"].str.strip()).str.strip()
    raw["label"] = raw["label"].astype(int) - 1
    pool = raw[~raw["text"].isin(reference_texts)].sample(frac=1, random_state=seed)
    pool = pool.reset_index(drop=True)
    noisy = pool.iloc[2 * rows:3 * rows][["text", "label"]].copy()
    rng = np.random.default_rng(seed)
    flip = rng.random(len(noisy)) < NOISE
    noisy.loc[flip, "label"] = (noisy.loc[flip, "label"] + rng.integers(1, 4, flip.sum())) % 4
    batches = {
        "in_distribution": pool.iloc[:rows][["text", "label"]],
        "only_sports": pool[pool["label"] == 1].iloc[-rows:][["text", "label"]],
        "titles_only": pool.iloc[rows:2 * rows].assign(text=lambda d: d["title"].str.strip())[
            ["text", "label"]],
        "label_noise": noisy,
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in batches.items():
        paths[name] = out / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def sentences(source: Path) -> list[str]:
    """The sentences of six words or more of a text."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", source.read_text())
            if len(s.split()) >= 6]


def spanish_batch(source: Path, out: Path) -> Path:
    """One text per sentence (six words or more) of a Spanish document."""
    path = out / "spanish.csv"
    pd.DataFrame({"text": sentences(source)}).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AG News CSV folder")
    parser.add_argument("--model-uri", default="models:/agnews-classifier@champion")
    parser.add_argument("--spanish", type=Path, help="a Spanish text for a fifth batch")
    parser.add_argument("--out", type=Path, default=ROOT / "drift-batches")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.monitoring.reference import find_reference_runs

    runs, model = find_reference_runs(MlflowClient(), args.model_uri, "")
    predictions = mlflow.artifacts.download_artifacts(run_id=runs["evaluate"],
                                                      artifact_path="predictions.parquet")
    paths = make_batches(args.data / "test.csv", set(pd.read_parquet(predictions)["text"]),
                         args.out.resolve())
    if args.spanish:
        paths["spanish"] = spanish_batch(args.spanish, args.out.resolve())
    table = {}
    for name, path in paths.items():
        proc = subprocess.run([sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", "monitor",
                               "--env-manager", "local", "-P", f"input={path}",
                               "-P", f"model_uri={args.model_uri}"],
                              cwd=ROOT, env=os.environ, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("monitor:")), "")
        print(line or proc.stderr[-2000:], flush=True)
        run_id = re.findall(r"Run \(ID '([0-9a-f]+)'\)", proc.stderr)[-1]
        metrics = MlflowClient().get_run(run_id).data.metrics
        table[name] = {k[len("drift_"):]: (v, metrics[f"{k}_p_holm"], metrics[f"{k}_flag"])
                       for k, v in metrics.items() if f"{k}_flag" in metrics}
    checks = sorted({c for row in table.values() for c in row})
    print(f"\nmodel {model}; each cell: the check's value (its Holm-adjusted p); * = drift")
    print("| batch | " + " | ".join(checks) + " |")
    print("|---" * (len(checks) + 1) + "|")
    for name, row in table.items():
        cells = [f"{row[c][0]:.3g} ({row[c][1]:.2g}){' *' if row[c][2] else ''}" if c in row
                 else "-" for c in checks]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
