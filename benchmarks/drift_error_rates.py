#!/usr/bin/env python3
"""How often the monitor is wrong: its family-wise false-alarm rate on unchanged batches, and
how often it catches each kind of drift, at several batch sizes and two reference sizes.

The model (default: the champion) scores once `--pool-rows` AG News rows it never saw (from
the data folder's test and train rows, less its ingest run's train and validation rows); then,
for each reference size and batch size, `--draws` times: a reference and a batch drawn from
those rows, disjoint, and the monitor's own checks (`agnews.monitoring.batch.batch_checks`, at
`--alpha`) run on them, labels included, then judged again with the labels held back (the
accuracy estimated from the calibrated confidence standing in for the measured one). A batch
from the same rows as its reference is unchanged: any flag is a false alarm. The drifted
batches: one class only (Sports), titles only (rescored), label noise at 10% and 20%, and, with
`--other-language FILE`, the sentences of a text in another language (as many as it holds,
once per draw). For labelled batches, the estimated accuracy is compared with the real one:
its mean absolute error and how often its 95% interval holds the real accuracy.

    python benchmarks/drift_error_rates.py --data <AG News folder> [--draws 200]

Prints one table, a row per kind and size, with 95% Clopper-Pearson intervals. Uses the
tracking store of MLFLOW_TRACKING_URI and the champion, or `--model-uri`. Run by hand.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from drift_batches import sentences  # noqa: E402

from agnews.monitoring.batch import batch_checks  # noqa: E402  (benchmarks/ is no package)
from agnews.monitoring.drift import judge  # noqa: E402
from agnews.monitoring.reference import Reference  # noqa: E402

BATCHES = (50, 200, 1000, 5000)
REFERENCES = (500, 7600)
KINDS = ("unchanged", "only_sports", "titles_only", "label_noise_10", "label_noise_20")
POOL: dict = {}  # filled before the workers fork: the scored rows they draw from


def scored(clf, texts: list[str], batch_size: int) -> tuple[np.ndarray, np.ndarray, list]:
    from agnews.model.logged_model import score_texts

    probs = score_texts(clf, texts, batch_size)
    ids = clf.tokenizer(texts, add_special_tokens=False)["input_ids"]
    return probs.argmax(axis=1), probs.max(axis=1), ids


def load_pool(data: Path, model_uri: str, batch_size: int, rows: int, seed: int,
              other: list[str]) -> dict:
    """Up to `rows` rows the model never saw (drawn at random), with the model's answers on
    each text and on its title alone, and on the `other` language's texts."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.model.logged_model import load_logged_classifier
    from agnews.monitoring.reference import find_reference_runs

    runs, name = find_reference_runs(MlflowClient(), model_uri, "")
    seen = {s: pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=runs["ingest"], artifact_path=f"data/{s}.parquet")) for s in ("train", "val")}
    raw = pd.concat([pd.read_csv(data / f"{s}.csv", header=None, dtype=str,
                                 names=["label", "title", "desc"], keep_default_na=False)
                     for s in ("test", "train")], ignore_index=True)
    raw["text"] = (raw["title"].str.strip() + " " + raw["desc"].str.strip()).str.strip()
    raw["label"] = raw["label"].astype(int) - 1
    known = set(seen["train"]["text"]) | set(seen["val"]["text"])
    pool = raw[~raw["text"].isin(known)].drop_duplicates("text")
    pool = pool.sample(n=min(rows, len(pool)), random_state=seed).reset_index(drop=True)
    clf = load_logged_classifier(model_uri, "auto")
    predicted, confidence, ids = scored(clf, pool["text"].tolist(), batch_size)
    t_predicted, t_confidence, t_ids = scored(clf, pool["title"].str.strip().tolist(), batch_size)
    train_ids = clf.tokenizer(seen["train"]["text"].tolist(), add_special_tokens=False)
    o_predicted, o_confidence, o_ids = scored(clf, other, batch_size) if other else ([], [], [])
    return {"other": other, "other_predicted": o_predicted, "other_confidence": o_confidence,
            "other_ids": o_ids, "ids": ids,
            "pool": pool.assign(predicted=predicted, confidence=confidence),
            "titles": (t_predicted, t_confidence, t_ids), "train_texts": seen["train"]["text"],
            "train_ids": train_ids["input_ids"], "unk": clf.tokenizer.unk_token_id,
            "model": name}


def draw(kind: str, ref_rows: int, batch_rows: int, seed: int, alpha: float) -> dict:
    """One reference and one batch of `kind`: the batch's verdict with its labels and, judged
    again with them held back, without (the estimated accuracy standing in for accuracy); the
    checks that flagged; the estimate's error against the batch's real accuracy."""
    pool, rng = POOL["pool"], np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    ref_at, rest = order[:ref_rows], order[ref_rows:]
    if kind == "only_sports":
        rest = rest[pool["label"].to_numpy()[rest] == 1]
    at = rest[:batch_rows]
    batch = pool.iloc[at][["text", "label", "predicted", "confidence"]].reset_index(drop=True)
    batch_ids = [POOL["ids"][i] for i in at]
    if kind == "titles_only":
        predicted, confidence, ids = POOL["titles"]
        batch = batch.assign(text=pool["title"].iloc[at].str.strip().to_numpy(),
                             predicted=predicted[at], confidence=confidence[at])
        batch_ids = [ids[i] for i in at]
    if kind.startswith("label_noise"):
        flip = rng.random(len(batch)) < int(kind.rsplit("_", 1)[1]) / 100
        batch.loc[flip, "label"] = (batch.loc[flip, "label"] + rng.integers(1, 4, flip.sum())) % 4
    if kind == "other_language":
        texts = POOL["other"]
        batch = pd.DataFrame({"text": texts, "predicted": POOL["other_predicted"],
                              "confidence": POOL["other_confidence"]})
        batch_ids = POOL["other_ids"]
    ref = pool.iloc[ref_at].reset_index(drop=True)
    accuracy = float((ref["label"] == ref["predicted"]).mean())
    reference = Reference(POOL["train_texts"], ref, accuracy, {}, POOL["model"])
    ids = {"train": POOL["train_ids"], "test": [POOL["ids"][i] for i in ref_at],
           "batch": batch_ids}
    checks = batch_checks(reference, batch, ids, POOL["unk"], seed, alpha)
    unlabelled = judge([replace(c, in_family=True) for c in checks if c.name != "accuracy"],
                       alpha)
    estimate = next(c for c in checks if c.name == "estimated_accuracy")
    out = {"labelled": any(c.drift for c in checks), "unlabelled": any(c.drift for c in unlabelled),
           "flagged": [c.name for c in checks if c.drift]}
    if "label" in batch.columns:
        real = float((batch["label"] == batch["predicted"]).mean())
        out["error"] = abs(estimate.value - real)
        out["covered"] = estimate.detail["ci_low"] <= real <= estimate.detail["ci_high"]
    return out


def cell(args) -> tuple:
    kind, ref_rows, batch_rows, draws, alpha = args
    return args, [draw(kind, ref_rows, batch_rows, 1000 * ref_rows + d, alpha)
                  for d in range(draws)]


def rate(k: int, n: int) -> str:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=0.05, method="beta")
    return f"{k / n:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AG News CSV folder")
    parser.add_argument("--model-uri", default="models:/agnews-classifier@champion")
    parser.add_argument("--draws", type=int, default=200, help="batches per cell")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--other-language", type=Path, help="a text in another language")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--references", default=",".join(map(str, REFERENCES)),
                        help="comma-separated reference sizes (rows)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--pool-rows", type=int, default=15_000,
                        help="unseen rows scored once, which every draw samples from")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if set(kinds) - set(KINDS):
        parser.error(f"--kinds: unknown {sorted(set(kinds) - set(KINDS))}; use {list(KINDS)}")
    other = sentences(args.other_language) if args.other_language else []
    POOL.update(load_pool(args.data, args.model_uri, args.eval_batch_size, args.pool_rows, 0,
                          other))
    if other:
        kinds.append("other_language")
    pool = POOL["pool"]
    print(f"model {POOL['model']}; {len(pool)} unseen rows (accuracy "
          f"{(pool['label'] == pool['predicted']).mean():.4f}); {args.draws} draws per cell; "
          f"alpha {args.alpha}", flush=True)
    references = [int(r) for r in args.references.split(",") if r]
    cells = [(kind, r, b, args.draws, args.alpha) for kind in kinds for r in references
             for b in (BATCHES if kind != "other_language" else (len(POOL["other"]),))
             if r + b <= len(pool)]
    print("\n| kind | reference rows | batch rows | flagged, with labels | flagged, labels held "
          "back | estimated accuracy: mean abs. error | its 95% interval covers | flagged by (the "
          "family judged: with labels where the batch has them) |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    # map yields in order as cells finish: each row is printed as soon as it and those before
    # it are done, so a long run interrupted keeps what it measured
    with ProcessPoolExecutor(args.jobs) as pool_of_workers:
        for (kind, r, b, _, _), draws in pool_of_workers.map(cell, cells):
            print(row(kind, r, b, draws), flush=True)


def row(kind: str, r: int, b: int, draws: list[dict]) -> str:
    n = len(draws)
    by_check = Counter(name for d in draws for name in d["flagged"])
    errors = [d["error"] for d in draws if "error" in d]
    covered = sum(d["covered"] for d in draws if "error" in d)
    estimate = f"{np.mean(errors):.4f} | {rate(covered, len(errors))}" if errors else "- | -"
    return (f"| {kind} | {r} | {b} | {rate(sum(d['labelled'] for d in draws), n)} | "
            f"{rate(sum(d['unlabelled'] for d in draws), n)} | {estimate} | "
            f"{', '.join(f'{c} {k}' for c, k in by_check.most_common()) or '-'} |")


if __name__ == "__main__":
    main()
