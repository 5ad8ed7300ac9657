"""Step 1, ingest: load, validate and sample the data.

Reads: the `data` parameter (Hub id at `data_revision`, folder or file; see
`agnews.data.sources`).
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

import dataclasses
import sys

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import DataConfig
from agnews.data.profile import class_balance, text_length, text_overlap, word_counts
from agnews.data.sampling import sample_splits
from agnews.data.sources import dataset_source, load_source, source_tags
from agnews.data.tables import release_arrow_memory, rows_digest

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), _ = parse("ingest", argv, [DataConfig])
    import mlflow

    from agnews.data import plots
    from agnews.tracking.fingerprint import fingerprint
    from agnews.tracking.runs import (
        log_dataframe,
        log_figure,
        step_run,
        without_dataset_advisories,
    )

    source = load_source(cfg.data, cfg.data_revision)
    splits = sample_splits(source, cfg)
    source_rows, tags = len(source.train), source_tags(source)
    # The rows live on in the splits alone: at a million rows the pools are hundreds of MB.
    source = dataclasses.replace(source, train=None, test=None)
    release_arrow_memory()
    with step_run("ingest", config_params(cfg)):
        mlflow.set_tags(tags)
        for name, df in splits.items():
            log_dataframe(df, f"data/{name}.parquet")
            # the digest tokenize computes of the same rows read back from this file
            with without_dataset_advisories():
                mlflow.log_input(mlflow.data.from_pandas(
                    df, source=dataset_source(source, name), targets="label", name=name,
                    digest=rows_digest([df])), context=name)
            mlflow.log_metric(f"{name}_rows", len(df))
        words = {name: word_counts(df["text"]) for name, df in splits.items()}
        lengths = text_length(splits, words)
        for row in lengths[lengths["unit"] == "words"].itertuples():
            mlflow.log_metric(f"{row.split}_words_mean", row.mean)
        mlflow.log_metric("source_train_rows", source_rows)
        mlflow.set_tag("data_fingerprint", fingerprint(cfg.data) + (
            f"@{source.revision.sha}" if source.revision else ""))
        mlflow.log_metric("train_test_text_overlap", text_overlap(splits["train"], splits["test"]))
        balance = class_balance(splits)
        mlflow.log_table(balance, "class_balance.json")
        mlflow.log_table(lengths, "text_length.json")
        log_figure(plots.class_balance(balance), "plots/class_balance.png")
        log_figure(plots.length_distribution(
            {name: counts.to_numpy() for name, counts in words.items()},
            "words"), "plots/text_length_words.png")
    print("ingest: " + ", ".join(f"{k} {len(v)} rows" for k, v in splits.items()))


if __name__ == "__main__":
    run_step("ingest", main, sys.argv[1:])
