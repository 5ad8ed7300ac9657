"""The `main` entry point: runs ingest → tokenize → train → evaluate → report as nested runs.

Each step is started with `mlflow.projects.run` inside this (parent) run, which makes it a
child (`mlflow.parentRunId`); steps receive their inputs as `runs:/<upstream run>/<artifact>`
URIs. The parent records each child's run id (`step.<name>.run_id`), copies the final test
metrics, and links the report. If a step fails, the parent ends FAILED naming the step.
"""
from __future__ import annotations

import sys
from pathlib import Path

from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import DataConfig, EvalConfig, ReportConfig, TokenizeConfig, TrainConfig
from steps.errors import UserError

PROJECT_DIR = Path(__file__).resolve().parents[1]
TEST_METRICS = ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss")
STEPS = ("ingest", "tokenize", "train", "evaluate", "report")


def step_parameters(data: DataConfig, tok: TokenizeConfig, train: TrainConfig, ev: EvalConfig,
                    rep: ReportConfig, upstream: dict[str, str]) -> dict[str, dict[str, str]]:
    """The `-P` parameters of each step, given the run ids of the steps already done."""
    return {
        "ingest": config_params(data),
        "tokenize": {**config_params(tok), "splits": f"runs:/{upstream.get('ingest')}/data"},
        "train": {**config_params(train),
                  "tokenized": f"runs:/{upstream.get('tokenize')}/tokenized",
                  "tokenizer": f"runs:/{upstream.get('tokenize')}/tokenizer"},
        "evaluate": {**config_params(ev), "model_uri": f"runs:/{upstream.get('train')}/model",
                     "splits": f"runs:/{upstream.get('ingest')}/data"},
        "report": {**config_params(rep), **{f"{s}_run": upstream.get(s, "")
                                            for s in ("ingest", "tokenize", "train", "evaluate")}},
    }


def run_child(step: str, parameters: dict[str, str], experiment_id: str) -> str:
    """Run one step as a child run in this environment; returns its run id.

    The child runs with env_manager="local": `main` already runs inside the project's
    environment (conda, virtualenv or local), so each step reuses it instead of building
    a new one per step.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    submitted = mlflow.projects.run(
        str(PROJECT_DIR), entry_point=step, parameters=parameters, env_manager="local",
        experiment_id=experiment_id, synchronous=False)
    client = MlflowClient()
    client.set_tag(submitted.run_id, "step", step)
    try:
        ok = submitted.wait()
    except KeyboardInterrupt:
        submitted.cancel()
        client.set_terminated(submitted.run_id, "KILLED")
        raise
    # The step ends its own run; this covers a child that died before it could.
    if client.get_run(submitted.run_id).info.status == "RUNNING":
        client.set_terminated(submitted.run_id, "FINISHED" if ok else "FAILED")
    if not ok:
        raise UserError(f"step '{step}' failed (run {submitted.run_id}); its error is printed "
                        "above, and the run's logs are in MLflow")
    return submitted.run_id


def main(argv=None) -> None:
    quiet_libraries()
    # Building every config first validates every parameter before any step starts.
    (data, tok, train, ev, rep), _ = parse(
        "main", argv, [DataConfig, TokenizeConfig, TrainConfig, EvalConfig, ReportConfig])
    import mlflow

    with mlflow.start_run() as parent:
        experiment_id = parent.info.experiment_id
        done: dict[str, str] = {}
        for step in STEPS:
            print(f"main: running {step}", flush=True)
            try:
                params = step_parameters(data, tok, train, ev, rep, done)[step]
                done[step] = run_child(step, params, experiment_id)
            except UserError:
                mlflow.set_tag("failed_step", step)
                raise
            mlflow.set_tag(f"step.{step}.run_id", done[step])
        final = mlflow.get_run(done["evaluate"]).data.metrics
        mlflow.log_metrics({k: final[k] for k in TEST_METRICS if k in final})
        report_uri = f"runs:/{done['report']}/report/report.html"
        mlflow.set_tag("report", report_uri)
        mlflow.set_tag("mlflow.note.content",
                       f"Test accuracy {final['test_accuracy']:.4f}, F1 {final['test_f1']:.4f}."
                       f" Report: {report_uri}")
    print(f"main: done. test_accuracy {final['test_accuracy']:.4f}  test_f1 "
          f"{final['test_f1']:.4f}  report {report_uri}")


if __name__ == "__main__":
    run_step("main", main, sys.argv[1:])
