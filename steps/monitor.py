"""Entry point `monitor`: compare a batch of new texts, and the model's answers on them, with
what the model learned from, and say whether they drifted.

Reads: `input`, a CSV or Parquet batch with a `text` column (`label` optional; `predict`'s
output is taken as it is, its predictions reused), and `model_uri` (default the champion),
whose reference is found through its lineage (`agnews.monitoring.reference`) unless
`reference` names an evaluate run.
Writes, on this run: one metric per check, `drift_<check>` with `_p`, `_p_holm`, `_flag` and
its details (`agnews.monitoring.drift`: two-sample tests judged as one family at `alpha`),
`batch_rows`, and `batch_accuracy`, `batch_f1` with labels; tags `drift` (true/false) and
`drift_reasons`; plots `plots/length_tokens.png`, `plots/class_mix.png`, `plots/confidence.png`
(and `plots/confusion_matrix.png` with labels); `drift_report/report.html` (+ `report.md`);
`batch_predictions.parquet`. Each batch run is nested under its model's series run (`monitor
<model>`), which holds every batch's metrics at `step` = batch number.
With `fail_on_drift`, a batch with drift exits 3.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import LABELS, EvalConfig, MonitorConfig
from agnews.errors import UserError
from agnews.monitoring.batch import batch_checks, check_metrics, read_batch

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.

DRIFT_EXIT = 3


def save_figures(figures: dict, folder: Path) -> dict[str, bytes]:
    """Write each Figure as `folder/<name>` and return the PNG bytes by name."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        out[name] = (folder / name).read_bytes()
    return out


def check_batch(client, batch: pd.DataFrame, cfg: MonitorConfig, ev: EvalConfig):
    """The model's reference, the word pieces of the reference's and the batch's texts, and
    every check of the batch (scored by the model first unless it holds predictions)."""
    from agnews.model.logged_model import load_logged_classifier, score_texts
    from agnews.monitoring.reference import load_reference

    ref = load_reference(client, cfg.model_uri, cfg.reference)
    try:
        clf = load_logged_classifier(cfg.model_uri, ev.precision)
    except Exception as err:  # MLflow raises several types for a URI it cannot load
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"cannot load model_uri '{cfg.model_uri}' ({first}): pass a logged or "
                        "registered model") from None
    if "predicted" not in batch.columns:
        probs = score_texts(clf, batch["text"].tolist(), ev.eval_batch_size)
        batch["predicted"], batch["confidence"] = probs.argmax(axis=1), probs.max(axis=1)

    def tokenize(texts: list[str]) -> list[list[int]]:
        return clf.tokenizer(texts, add_special_tokens=False)["input_ids"]

    ids = {"train": tokenize(ref.train_texts), "test": tokenize(ref.test["text"].tolist()),
           "batch": tokenize(batch["text"].tolist())}
    return ref, ids, batch_checks(ref, batch, ids, clf.tokenizer.unk_token_id, cfg.seed,
                                  cfg.alpha, cfg.accuracy_margin)


def log_batch(client, run, ref, batch: pd.DataFrame, ids: dict, checks: list,
              alpha: float) -> int:
    """On the active (batch) run: its place in the model's series, the checks as metrics and
    tags, the plots, the drift report and the scored batch; returns the batch's number."""
    import mlflow

    from agnews.monitoring.batch import label_metrics, token_lengths
    from agnews.monitoring.plots import drift_figures
    from agnews.monitoring.report import drift_report
    from agnews.monitoring.series import log_to_series, series_run
    from agnews.report.document import write_report
    from agnews.tracking.runs import log_dataframe

    flagged = [c for c in checks if c.drift]
    series_id, number = series_run(client, run.info.experiment_id, ref.model)
    mlflow.set_tags({"mlflow.parentRunId": series_id, "monitor.model": ref.model,
                     "monitor.batch": str(number), "drift": str(bool(flagged)).lower(),
                     "drift_reasons": " | ".join(c.reason for c in flagged)})
    if mlflow.get_run(run.info.run_id).info.run_name == "monitor":  # not the user's name
        mlflow.set_tag("mlflow.runName", f"batch {number} {ref.model}")
    metrics = {**check_metrics(checks), "batch_rows": float(len(batch)),
               "drift": float(bool(flagged)), **label_metrics(batch)}
    mlflow.log_metrics(metrics)
    log_to_series(client, series_id, number, metrics)
    with tempfile.TemporaryDirectory() as tmp:
        figures = drift_figures(ref.test, batch, token_lengths(ids["test"]),
                                token_lengths(ids["batch"]))
        images = save_figures(figures, Path(tmp) / "plots")
        mlflow.log_artifacts(str(Path(tmp) / "plots"), "plots")
        write_report(drift_report(ref.model, number, len(batch), checks, images, ref.runs,
                                  alpha),
                     Path(tmp) / "drift_report", f"Drift report: {ref.model}, batch {number}")
        mlflow.log_artifacts(str(Path(tmp) / "drift_report"), "drift_report")
    log_dataframe(batch.assign(predicted=[LABELS[i] for i in batch["predicted"]]),
                  "batch_predictions.parquet")
    return number


def main(argv=None) -> None:
    quiet_libraries()
    (cfg, ev), uris = parse("monitor", argv, [MonitorConfig, EvalConfig], {
        "input": "CSV or Parquet batch of texts (`text`; `label` and predict's columns kept)"})
    source = Path(uris.input).expanduser()
    batch = read_batch(source)  # a bad batch stops here, before any model loads
    from mlflow.tracking import MlflowClient

    from agnews.tracking.runs import step_run

    client = MlflowClient()
    ref, ids, checks = check_batch(client, batch, cfg, ev)
    upstream = {"input": str(source.resolve()), "model_uri": cfg.model_uri,
                **{f"reference_{k}": f"runs:/{v}" for k, v in ref.runs.items()}}
    with step_run("monitor", config_params(cfg, ev), upstream) as run:
        number = log_batch(client, run, ref, batch, ids, checks, cfg.alpha)
    flagged = [c for c in checks if c.drift]
    verdict = ("drift: " + "; ".join(c.reason for c in flagged)) if flagged else "no drift"
    estimate = next((c for c in checks if c.name == "estimated_accuracy" and c.in_family), None)
    guess = (f" (accuracy estimated without labels {estimate.value:.3f}, 95% CI "
             f"{estimate.detail['ci_low']:.3f}-{estimate.detail['ci_high']:.3f})"
             if estimate else "")
    print(f"monitor: batch {number} of {ref.model}, {len(batch)} texts{guess}: {verdict}")
    if flagged and cfg.fail_on_drift:
        print(f"monitor: exiting {DRIFT_EXIT} (fail_on_drift=true)", file=sys.stderr)
        sys.exit(DRIFT_EXIT)


if __name__ == "__main__":
    run_step("monitor", main, sys.argv[1:])
