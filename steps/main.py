"""The `main` entry point: ingest → tokenize → train → evaluate → register → report, nested.

Each step is started with `mlflow.projects.run` inside this (parent) run, which makes it a
child (`mlflow.parentRunId`); steps receive their inputs as `runs:/<upstream run>/<artifact>`
URIs. Before starting a step, main computes its cache key (`agnews.tracking.step_cache`): a
FINISHED run of the experiment with the same key is reused instead (`step.<name>.cached=true`).
The parent run is named `main` plus the parameters that differ from the defaults, each child
after its step. The parent records each step's run id (`step.<name>.run_id`), copies the final
test metrics, and links the report. If a step fails, the parent ends FAILED naming the step. A
model that misses the register step's gate is not a failure: register ends FINISHED with
`registered=false`.

Hub ids are pinned first (`pin_revisions`): the data set's and the model's revision become
the commits the Hub (or, offline, the local cache) gives, every step gets those commits, and
they are part of the cache keys, so a new Hub revision reruns what depends on it. If neither
the Hub nor the cache has an id, main stops before any step with one line naming the fix.

Each step runs under a lock on its cache key (`agnews.tracking.locks`): a second identical
`main` started meanwhile waits, then reuses the finished run.

The register step is cached like the others: an identical rerun leaves the registry alone.
`-P force=register` decides again (e.g. after the registered model was deleted); a model
already registered is never added twice.
"""
from __future__ import annotations

import dataclasses
import sys

from agnews import PROJECT_DIR
from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import (
    DataConfig,
    EvalConfig,
    MainConfig,
    RegisterConfig,
    ReportConfig,
    TokenizeConfig,
    TrainConfig,
)
from agnews.errors import UserError
from agnews.tracking.locks import step_lock
from agnews.tracking.pipeline import (
    find_cached,
    go_offline_if_unreachable,
    pin_revisions,
    registry_summary,
    run_child,
    run_title,
    step_parameters,
)
from agnews.tracking.step_cache import STEPS, forced_steps, step_keys

CHECKPOINTS = PROJECT_DIR / ".checkpoints"
TEST_METRICS = ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss")


def main(argv=None) -> None:
    quiet_libraries()
    # Building every config first validates every parameter before any step starts.
    (data, tok, train, ev, reg, rep, cfg), _ = parse(
        "main", argv, [DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig,
                       ReportConfig, MainConfig], exclude={"checkpoint_dir"})
    forced = forced_steps(cfg.force, STEPS)
    title = run_title(config_params(data, tok, train, ev, reg, rep), config_params(
        DataConfig(), TokenizeConfig(), TrainConfig(), EvalConfig(), RegisterConfig(),
        ReportConfig()))
    data, tok, train, pins = pin_revisions(data, tok, train)
    for flag, pin in pins.items():
        print(f"main: {flag} {pin.repo_id} at {pin.sha[:12]} ("
              + ("from the Hub" if pin.online else "from the local cache") + ")", flush=True)
    go_offline_if_unreachable(pins)
    configs = {"ingest": (data,), "tokenize": (tok,), "train": (train,), "evaluate": (ev,),
               "register": (reg, ev), "report": (rep,)}
    keys = step_keys(configs)
    configs["train"] = (dataclasses.replace(train,
                                            checkpoint_dir=str(CHECKPOINTS / keys["train"])),)
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.tracking.runs import name_run

    client = MlflowClient()
    with mlflow.start_run() as parent:
        experiment_id = parent.info.experiment_id
        name_run(title)
        for flag, pin in pins.items():
            mlflow.set_tags({f"{flag}.revision": pin.sha,
                             f"{flag}.source": "hub" if pin.online else "cache"})
        done: dict[str, str] = {}
        for step in STEPS:
            # A concurrent main with the same step key waits here, then reuses this run
            with step_lock(keys[step], step):
                cached = None if step in forced else find_cached(client, experiment_id, step,
                                                                 keys[step])
                mlflow.set_tag(f"step.{step}.cache_key", keys[step])
                if cached:
                    print(f"main: {step} reused {cached} (cached)", flush=True)
                    done[step] = cached
                    mlflow.set_tag(f"step.{step}.cached", "true")
                else:
                    print(f"main: {step} running", flush=True)
                    try:
                        params = step_parameters(configs, done)[step]
                        done[step] = run_child(step, params, experiment_id, keys[step])
                    except UserError:
                        mlflow.set_tag("failed_step", step)
                        raise
                mlflow.set_tag(f"step.{step}.run_id", done[step])
        final = mlflow.get_run(done["evaluate"]).data.metrics
        mlflow.log_metrics({k: final[k] for k in TEST_METRICS if k in final})
        registry = registry_summary(mlflow.get_run(done["register"]).data.tags)
        mlflow.set_tag("registered", registry["registered"])
        if registry["model_uri"]:
            mlflow.set_tag("registered_model_uri", registry["model_uri"])
        report_uri = f"runs:/{done['report']}/report/report.html"
        mlflow.set_tag("report", report_uri)
        mlflow.set_tag("mlflow.note.content",
                       f"Test accuracy {final['test_accuracy']:.4f}, F1 {final['test_f1']:.4f}."
                       f" {registry['line']}. Report: {report_uri}")
    print(f"main: done. test_accuracy {final['test_accuracy']:.4f}  test_f1 "
          f"{final['test_f1']:.4f}  {registry['line']}  report {report_uri}")


if __name__ == "__main__":
    run_step("main", main, sys.argv[1:])
