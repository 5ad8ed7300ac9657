"""Entry point `predict`: score a CSV or Parquet file of texts with a logged or registered model.

Reads: `input`, a CSV or Parquet file with a `text` column (`label` optional: when present,
accuracy and F1 are reported too), or the AG News CSV layout; `model_uri` (default the
registry's `models:/agnews-classifier@champion`).
Writes `output` (.csv or .parquet): one row per input row, in input order, with `text`,
`predicted` (the class name), `confidence`, one `prob_<class>` column per class, and
`label` (the class name) when the input has labels. The file is also logged to this run.

Every row is checked before the model loads: an empty text or a bad label stops with one
line naming the rows, and nothing is written. The output appears whole or not at all (it is
written beside its destination and renamed into place), so a crash never leaves half a file.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import EvalConfig, PredictConfig
from agnews.errors import UserError
from agnews.evaluation.predictions import prediction_table

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.


def write_atomic(table: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet (by suffix) to a temporary name beside `path`, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        os.replace(tmp, path)  # atomic on one filesystem: readers see the old file or the new
    finally:
        tmp.unlink(missing_ok=True)


def check_paths(source: Path, output: Path) -> None:
    if not source.is_file():
        raise UserError(f"input '{source}' is not a file: pass a CSV or Parquet file of texts "
                        "(paths are relative to the project folder)")
    if output.resolve() == source.resolve():
        raise UserError(f"output '{output}' is the input file: pass another -P output=<file>")
    if not output.parent.is_dir():
        raise UserError(f"output folder '{output.parent}' does not exist: create it or pass "
                        "-P output=<file in an existing folder>")


def main(argv=None) -> None:
    quiet_libraries()
    (cfg, ev), uris = parse("predict", argv, [PredictConfig, EvalConfig],
                            {"input": "CSV or Parquet file of texts (`text`, optional `label`)"})
    source, output = Path(uris.input).expanduser(), Path(cfg.output).expanduser()
    check_paths(source, output)
    from agnews.data.tables import read_table

    texts = read_table(source, need_label=False)  # every row checked before the model loads
    import mlflow
    from tqdm.auto import tqdm

    from agnews.evaluation.metrics import classification_metrics
    from agnews.model.logged_model import load_logged_classifier, score_texts
    from agnews.tracking.runs import step_run

    clf = load_logged_classifier(cfg.model_uri, ev.precision)
    with step_run("predict", config_params(cfg, ev), {"input": str(source.resolve()),
                                                      "model_uri": cfg.model_uri}):
        mlflow.set_tags(clf.runtime.tags())  # the scorer (runtime) and where it ran
        start = time.perf_counter()
        with tqdm(total=len(texts), unit="text", desc="predict", mininterval=1.0) as bar:
            probs = score_texts(clf, texts["text"].tolist(), ev.eval_batch_size, bar)
        seconds = time.perf_counter() - start
        write_atomic(prediction_table(texts, probs), output)
        summary = {"predict_rows": len(texts), "predict_rows_per_second": len(texts) / seconds}
        if "label" in texts.columns:
            scores = classification_metrics(texts["label"].to_numpy(), probs)
            summary.update({"accuracy": scores["accuracy"], "f1": scores["f1"]})
        mlflow.log_metrics(summary)
        mlflow.log_artifact(str(output))
    scored = (f"  accuracy {summary['accuracy']:.4f}  f1 {summary['f1']:.4f}"
              if "accuracy" in summary else "")
    print(f"predict: {len(texts)} texts scored with {cfg.model_uri} "
          f"({summary['predict_rows_per_second']:.0f} rows/s){scored}; wrote {output}")


if __name__ == "__main__":
    run_step("predict", main, sys.argv[1:])
