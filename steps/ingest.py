"""Step 1, ingest: load, validate and sample the data.

Reads: the `data` parameter (Hub id at `data_revision`, folder or file; see
`steps.data_sources`).
Writes: `data/train.parquet`, `data/val.parquet`, `data/test.parquet` (columns `text`,
`label`), each also logged as an MLflow dataset input with its digest and a source MLflow
resolves (the local path, or the Hub data set, split and commit); tags `data.source`
(folder, file, hub or cache) and, for the Hub, `data.revision` (the commit); the tables
`class_balance.json` and `text_length.json`; plots `plots/class_balance.png` and
`plots/text_length_words.png`; metrics `<split>_rows`, `<split>_words_mean`,
`source_train_rows` (rows the source's train split holds),
and `train_test_text_overlap` (texts that occur in both train and test).
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import LABELS, DataConfig
from steps.data_sources import Source, load_source
from steps.errors import UserError

SPLITS = ("train", "val", "test")


def allocate(counts: pd.Series, n: int) -> pd.Series:
    """Rows per class for a sample of `n`, proportional to `counts` (largest remainder).

    Largest remainder keeps the total exactly `n` and every class within one row of its
    exact share, which plain rounding does not.
    """
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    short = n - int(quota.sum())
    order = (exact - quota).sort_values(ascending=False, kind="stable").index
    quota[order[:short]] += 1
    return quota


def _requested(size: int, available: int) -> int:
    """0 or more than exists means all rows."""
    return available if size == 0 or size > available else size


def _shuffled_by_class(pool: pd.DataFrame, rng: np.random.Generator) -> dict[int, pd.DataFrame]:
    shuffled = pool.iloc[rng.permutation(len(pool))]
    return {int(k): g for k, g in shuffled.groupby("label", sort=True)}


def _take(by_class: dict[int, pd.DataFrame], quota: pd.Series, offset: dict[int, int],
          split: str, source_name: str, sizes: str) -> pd.DataFrame:
    parts = []
    for label, n in quota.items():
        rows = by_class[label]
        start = offset[label]
        if start + n > len(rows):
            raise UserError(f"class {LABELS[label]} has {len(rows)} rows in the {source_name} "
                            f"split but {sizes} need {start + n}: lower the sizes or add data")
        parts.append(rows.iloc[start:start + n])
        offset[label] = start + n
    return pd.concat(parts)


def sample_splits(source: Source, cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """Stratified, seeded, disjoint train / val / test samples.

    Validation comes from the train pool and never overlaps train; test comes from the test
    pool, or, for a single-file source, from the same pool before train and val are drawn.
    Each class keeps its share of the pool in every split.
    """
    rng = np.random.default_rng(cfg.seed)
    pool = _shuffled_by_class(source.train, rng)
    counts = pd.Series({k: len(g) for k, g in pool.items()})
    offset = {k: 0 for k in pool}
    out: dict[str, pd.DataFrame] = {}

    if source.test is None:
        n_test = _requested(cfg.test_size, int(counts.sum()))
        out["test"] = _take(pool, allocate(counts, n_test), offset, "test", "data",
                            f"test_size={cfg.test_size}")
        counts = counts - pd.Series(offset)
    else:
        test_pool = _shuffled_by_class(source.test, rng)
        test_counts = pd.Series({k: len(g) for k, g in test_pool.items()})
        n_test = _requested(cfg.test_size, int(test_counts.sum()))
        out["test"] = _take(test_pool, allocate(test_counts, n_test), {k: 0 for k in test_pool},
                            "test", "test", f"test_size={cfg.test_size}")

    available = int(counts.sum())
    n_val = _requested(cfg.val_size, available)
    if n_val >= available:
        raise UserError(f"val_size={cfg.val_size} takes all {available} train-split rows and "
                        "leaves none to train on: pass a smaller positive val_size")
    sizes = f"train_size={cfg.train_size} and val_size={cfg.val_size}"
    val_quota = allocate(counts, n_val)
    out["val"] = _take(pool, val_quota, offset, "val", "train", sizes)
    if cfg.train_size == 0 or cfg.train_size > available:
        quota = counts - val_quota  # "all rows": everything validation did not take
    else:
        if cfg.train_size + n_val > available:
            raise UserError(f"the train split has {available} rows but {sizes} need "
                            f"{cfg.train_size + n_val}: lower train_size or val_size")
        quota = allocate(counts, cfg.train_size)
    out["train"] = _take(pool, quota, offset, "train", "train", sizes)

    # Interleave classes so a file read top to bottom is not sorted by label.
    return {name: df.sample(frac=1, random_state=cfg.seed).reset_index(drop=True)
            for name, df in ((s, out[s]) for s in SPLITS)}


def class_balance(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per split and class: rows and share of the split."""
    rows = []
    for split, df in splits.items():
        counts = df["label"].value_counts().reindex(range(len(LABELS)), fill_value=0)
        for label, n in counts.items():
            rows.append({"split": split, "label": label, "class": LABELS[label], "rows": int(n),
                         "share": round(n / max(len(df), 1), 4)})
    return pd.DataFrame(rows)


def text_length(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Words and characters per text, per split: mean, median, 95th percentile, max."""
    rows = []
    for split, df in splits.items():
        for unit, lengths in (("words", df["text"].str.split().str.len()),
                              ("chars", df["text"].str.len())):
            rows.append({"split": split, "unit": unit, "mean": round(float(lengths.mean()), 2),
                         "median": float(lengths.median()),
                         "p95": float(lengths.quantile(0.95)), "max": int(lengths.max())})
    return pd.DataFrame(rows)


def text_overlap(a: pd.DataFrame, b: pd.DataFrame) -> int:
    """How many texts of `a` also occur in `b` (AG News repeats a few stories across splits)."""
    return int(a["text"].isin(set(b["text"])).sum())


def source_tags(source: Source) -> dict[str, str]:
    if source.revision is None:
        return {"data.source": "file" if source.test is None else "folder"}
    return {"data.source": "hub" if source.revision.online else "cache",
            "data.revision": source.revision.sha}


def dataset_source(source: Source, split: str):
    """What `mlflow.log_input` records as the rows' origin: the local path, or the Hub data
    set at its commit (MLflow resolves no `hf://` string, but loads this source back with
    `datasets.load_dataset`). Validation rows come from the train split."""
    if source.revision is None:
        return source.uri
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    return HuggingFaceDatasetSource(path=source.revision.repo_id,
                                    split="test" if split == "test" else "train",
                                    revision=source.revision.sha)


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), _ = parse("ingest", argv, [DataConfig])
    import mlflow

    from steps import plots
    from steps.cache import fingerprint
    from steps.tracking import log_dataframe, log_figure, step_run

    source = load_source(cfg.data, cfg.data_revision)
    splits = sample_splits(source, cfg)
    with step_run("ingest", config_params(cfg)):
        mlflow.set_tags(source_tags(source))
        for name, df in splits.items():
            log_dataframe(df, f"data/{name}.parquet")
            dataset = mlflow.data.from_pandas(df, source=dataset_source(source, name),
                                              targets="label", name=name)
            mlflow.log_input(dataset, context=name)
            mlflow.log_metric(f"{name}_rows", len(df))
        lengths = text_length(splits)
        for row in lengths[lengths["unit"] == "words"].itertuples():
            mlflow.log_metric(f"{row.split}_words_mean", row.mean)
        mlflow.log_metric("source_train_rows", len(source.train))
        mlflow.set_tag("data_fingerprint", fingerprint(cfg.data) + (
            f"@{source.revision.sha}" if source.revision else ""))
        mlflow.log_metric("train_test_text_overlap", text_overlap(splits["train"], splits["test"]))
        balance = class_balance(splits)
        mlflow.log_table(balance, "class_balance.json")
        mlflow.log_table(lengths, "text_length.json")
        log_figure(plots.class_balance(balance), "plots/class_balance.png")
        log_figure(plots.length_distribution(
            {name: df["text"].str.split().str.len().to_numpy() for name, df in splits.items()},
            "words"), "plots/text_length_words.png")
    print("ingest: " + ", ".join(f"{k} {len(v)} rows" for k, v in splits.items()))


if __name__ == "__main__":
    run_step("ingest", main, sys.argv[1:])
