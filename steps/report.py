"""Step 6, report: gather the other steps' runs and write the report.

Reads: the runs given by `ingest_run`, `tokenize_run`, `train_run`, `evaluate_run`,
`register_run` (run ids): their parameters and metrics, register's decision tags, train's
per-epoch metric history, evaluate's `per_class_metrics.json`, `most_confident_mistakes.json`
and `predictions.parquet`, ingest's `class_balance.json`, every step's `plots/`, and the
previous FINISHED evaluate run of the experiment (for metric deltas); see
`agnews.report.facts`.
Writes: `report/report.md` (+ `report/img/*.png`) and `report/report.html` (self-contained),
in the language `report_lang` (en, es).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import ReportConfig
from agnews.report.content import build_report
from agnews.report.document import write_report
from agnews.report.facts import STEP_INPUTS, gather
from agnews.report.wording import t

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("report", argv, [ReportConfig],
                         {f"{s}_run": f"run id of the {s} run to report on" for s in STEP_INPUTS})
    import mlflow

    from agnews.tracking.runs import step_run

    run_ids = {s: getattr(uris, f"{s}_run") for s in STEP_INPUTS}
    facts = gather(run_ids, cfg.report_lang, cfg.sweep_run)
    facts.params["report_lang"] = cfg.report_lang  # this run's own parameter, for "reproduce"
    upstream = {f"{s}_run": r for s, r in {**run_ids, "sweep": cfg.sweep_run}.items() if r}
    with step_run("report", config_params(cfg), upstream), \
            tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "report"
        write_report(build_report(facts), folder, t(cfg.report_lang, "title"))
        mlflow.log_artifacts(str(folder), "report")
    print("report: wrote report/report.md and report/report.html")


if __name__ == "__main__":
    run_step("report", main, sys.argv[1:])
