"""The `main` entry point: ingest → tokenize → train → evaluate → register → report, nested.

Each step is started with `mlflow.projects.run` inside this (parent) run, which makes it a
child (`mlflow.parentRunId`); steps receive their inputs as `runs:/<upstream run>/<artifact>`
URIs. Before starting a step, main computes its cache key (`steps.cache`): a FINISHED run of
the experiment with the same key is reused instead (`step.<name>.cached=true`). The parent
records each step's run id (`step.<name>.run_id`), copies the final test metrics, and links
the report. If a step fails, the parent ends FAILED naming the step. A model that misses the
register step's gate is not a failure: register ends FINISHED with `registered=false`.

Hub ids are pinned first (`pin_revisions`): the data set's and the model's revision become
the commits the Hub (or, offline, the local cache) gives, every step gets those commits, and
they are part of the cache keys, so a new Hub revision reruns what depends on it. If neither
the Hub nor the cache has an id, main stops before any step with one line naming the fix.

The register step is cached like the others: an identical rerun leaves the registry alone.
`-P force=register` decides again (e.g. after the registered model was deleted); a model
already registered is never added twice.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from steps.cache import UPSTREAM, cache_key, fingerprint, forced_steps, hash_files, source_files
from steps.cli import config_params, parse, quiet_libraries, run_step
from steps.config import (DataConfig, EvalConfig, MainConfig, RegisterConfig, ReportConfig,
                          TokenizeConfig, TrainConfig)
from steps.errors import UserError

PROJECT_DIR = Path(__file__).resolve().parents[1]
CHECKPOINTS = PROJECT_DIR / ".checkpoints"
TEST_METRICS = ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss")
STEPS = ("ingest", "tokenize", "train", "evaluate", "register", "report")


def step_parameters(configs: dict, upstream: dict[str, str]) -> dict[str, dict[str, str]]:
    """The `-P` parameters of each step, given the run ids of the steps already done.

    `configs` maps each step to the tuple of config objects whose fields it takes."""
    def uri(step: str, path: str) -> str:
        return f"runs:/{upstream.get(step)}/{path}"

    return {
        "ingest": config_params(*configs["ingest"]),
        "tokenize": {**config_params(*configs["tokenize"]), "splits": uri("ingest", "data")},
        "train": {**config_params(*configs["train"]), "tokenized": uri("tokenize", "tokenized"),
                  "tokenizer": uri("tokenize", "tokenizer")},
        "evaluate": {**config_params(*configs["evaluate"]), "model_uri": uri("train", "model"),
                     "splits": uri("ingest", "data")},
        "register": {**config_params(*configs["register"]),
                     "evaluate_run": upstream.get("evaluate", "")},
        "report": {**config_params(*configs["report"]),
                   **{f"{s}_run": upstream.get(s, "") for s in UPSTREAM["report"]}},
    }


def step_keys(configs: dict) -> dict[str, str]:
    """Every step's cache key, upstream first (a key folds in its upstream steps' keys)."""
    inputs = {"ingest": {"data": fingerprint(configs["ingest"][0].data)},
              "tokenize": {"model": fingerprint(configs["tokenize"][0].model)},
              "train": {"model": fingerprint(configs["train"][0].model)}}
    keys: dict[str, str] = {}
    for step in STEPS:
        # checkpoint_dir is where train keeps its checkpoints, derived from this very key
        params = {k: v for k, v in config_params(*configs[step]).items()
                  if k != "checkpoint_dir"}
        keys[step] = cache_key(step, params, {u: keys[u] for u in UPSTREAM[step]},
                               hash_files(source_files(step)), inputs.get(step, {}))
    return keys


def find_cached(client, experiment_id: str, step: str, key: str) -> str | None:
    """The newest FINISHED run of `step` with this cache key; FAILED or killed runs never count."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.cache_key = '{key}' and tags.step = '{step}' "
                                       "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def latest_child(client, experiment_id: str, step: str) -> str | None:
    """The newest run of entry point `step` under the active (main) run, if any."""
    import mlflow

    parent = mlflow.active_run().info.run_id
    runs = client.search_runs(
        [experiment_id], order_by=["attributes.start_time DESC"], max_results=1,
        filter_string=f"tags.mlflow.parentRunId = '{parent}' and "
                      f"tags.`mlflow.project.entryPoint` = '{step}'")
    return runs[0].info.run_id if runs else None


def run_child(step: str, parameters: dict[str, str], experiment_id: str, key: str) -> str:
    """Run one step as a child run in this environment; returns its run id.

    The child runs with env_manager="local": `main` already runs inside the project's
    environment (conda, virtualenv or local), so each step reuses it instead of building
    a new one per step. Synchronous: MLflow then starts the step's command itself, where an
    asynchronous run would first start an `mlflow run` process per step (~2-3 s of start-up
    each); on Ctrl-C MLflow stops the step and marks its run failed.
    """
    import mlflow
    from mlflow.exceptions import ExecutionException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        run_id, ok = mlflow.projects.run(
            str(PROJECT_DIR), entry_point=step, parameters=parameters, env_manager="local",
            experiment_id=experiment_id, synchronous=True).run_id, True
    except ExecutionException:
        run_id, ok = latest_child(client, experiment_id, step), False
    if run_id is not None:
        client.set_tag(run_id, "step", step)
        client.set_tag(run_id, "cache_key", key)
    if not ok:
        where = f" (run {run_id})" if run_id else ""
        raise UserError(f"step '{step}' failed{where}; its error is printed above, and the "
                        "run's logs are in MLflow")
    return run_id


def pin_revisions(data: DataConfig, tok: TokenizeConfig, train: TrainConfig):
    """The configs with each Hub id's revision replaced by its commit, and the pins made
    (`{"data"|"model": steps.hub.Revision}`); local paths pass through, but a revision given
    for one is a mistake worth a clear line."""
    from steps.hub import is_hub_id, resolve

    pins = {}
    for flag, location, revision, kind in (("data", data.data, data.data_revision, "dataset"),
                                           ("model", tok.model, tok.model_revision, "model")):
        if is_hub_id(location):
            pins[flag] = resolve(location, kind, revision)
        elif revision != "main" and Path(location).expanduser().exists():
            raise UserError(f"{flag}_revision={revision} applies to a Hub id, but {flag} "
                            f"'{location}' is a local path: drop -P {flag}_revision")
    if "data" in pins:
        data = dataclasses.replace(data, data_revision=pins["data"].sha)
    if "model" in pins:
        tok = dataclasses.replace(tok, model_revision=pins["model"].sha)
        train = dataclasses.replace(train, model_revision=pins["model"].sha)
    return data, tok, train, pins


def go_offline_if_unreachable(pins: dict) -> None:
    """When every Hub id came from the cache because the Hub did not answer, the steps get
    HF_HUB_OFFLINE=1, the libraries' own switch, instead of each waiting for the Hub again."""
    from steps.hub import offline_mode

    if pins and not offline_mode() and not any(pin.online for pin in pins.values()):
        os.environ["HF_HUB_OFFLINE"] = "1"
        print(f"main: {next(iter(pins.values())).note}; using the local Hugging Face cache",
              flush=True)


def main(argv=None) -> None:
    quiet_libraries()
    # Building every config first validates every parameter before any step starts.
    (data, tok, train, ev, reg, rep, cfg), _ = parse(
        "main", argv, [DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig,
                       ReportConfig, MainConfig], exclude={"checkpoint_dir"})
    forced = forced_steps(cfg.force, STEPS)
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

    client = MlflowClient()
    with mlflow.start_run() as parent:
        experiment_id = parent.info.experiment_id
        for flag, pin in pins.items():
            mlflow.set_tags({f"{flag}.revision": pin.sha,
                             f"{flag}.source": "hub" if pin.online else "cache"})
        done: dict[str, str] = {}
        for step in STEPS:
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


def registry_summary(tags: dict[str, str]) -> dict[str, str]:
    """What the register run did, for the parent's tags and the closing line."""
    if tags.get("registered") != "true":
        return {"registered": "false", "model_uri": "",
                "line": f"not registered ({tags.get('decision', 'gate not passed')})"}
    uri = f"models:/{tags['registered_model']}/{tags['registered_version']}"
    alias = tags.get("alias")
    return {"registered": "true", "model_uri": uri,
            "line": f"registered {uri}" + (f" (@{alias})" if alias else "")}


if __name__ == "__main__":
    run_step("main", main, sys.argv[1:])
