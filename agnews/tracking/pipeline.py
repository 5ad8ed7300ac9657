"""How `main` chains the steps: each step's parameters from the runs before it, finding a
cached run, starting a step as a nested MLflow run, and the closing summary on the parent.
Run titles are in `titles.py`, the Hub commits every step is pinned to in `pins.py`, the
project the steps run from inside a Kubernetes image in `image.py`.
"""
from __future__ import annotations

from agnews.cli import config_params
from agnews.errors import UserError
from agnews.tracking.image import child_project
from agnews.tracking.inline import inline_steps, run_inline
from agnews.tracking.locks import step_lock
from agnews.tracking.stale import close_stale, process_tags
from agnews.tracking.step_cache import UPSTREAM
from agnews.tracking.warm import forking, run_forked

# Deferred imports: mlflow, only in the functions that start or close runs; the step wiring is pure
# and its tests need none.

TEST_METRICS = ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss")
TEST_INTERVALS = tuple(f"test_{m}_ci_{end}" for m in ("accuracy", "f1") for end in ("low", "high"))


def headline(final: dict[str, float]) -> str:
    """The closing line's test numbers, each with its 95% interval where evaluate logged one."""
    def one(name: str) -> str:
        low, high = final.get(f"{name}_ci_low"), final.get(f"{name}_ci_high")
        ci = "" if low is None or high is None else f" (95% CI {low:.4f}-{high:.4f})"
        return f"{name} {final[name]:.4f}{ci}"
    return f"{one('test_accuracy')}  {one('test_f1')}"


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


def find_cached(client, experiment_id: str, step: str, key: str) -> str | None:
    """The newest FINISHED run of `step` with this cache key; FAILED or killed runs never count."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.cache_key = '{key}' and tags.step = '{step}' "
                                       "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def run_child(step: str, parameters: dict[str, str], experiment_id: str, key: str | None,
              parent_run_id: str, run_name: str | None = None,
              tags: dict[str, str] | None = None, own_process: bool = False) -> str:
    """Run one step as a child run of `parent_run_id` in this environment; returns its run id.

    The run is created first, with the tags MLflow's project runner gives its own runs, so
    its id is known before the step starts and this works from any thread (MLflow's active
    run is per thread; a sweep starts trials from several). The child runs with
    env_manager="local": `main` already runs inside the project's environment (conda,
    virtualenv or local), so each step reuses it instead of building a new one per step.
    Synchronous: MLflow then starts the step's command itself, where an asynchronous run would
    first start an `mlflow run` process per step (~2-3 s of start-up each); on Ctrl-C MLflow
    stops the step and marks its run failed. Where main owns a warm server
    (`agnews.tracking.warm`), the same command runs in a process forked from it instead.
    """
    import mlflow
    from mlflow.entities import Param
    from mlflow.exceptions import ExecutionException
    from mlflow.tracking import MlflowClient
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import (
        MLFLOW_PARENT_RUN_ID,
        MLFLOW_PROJECT_ENTRY_POINT,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
    )

    client = MlflowClient()
    project = child_project()
    # This process's pid until the step's own process replaces it (agnews.tracking.stale).
    own = {**process_tags(), **({"step_key": key} if key is not None else {})}
    run = client.create_run(experiment_id, run_name=run_name or step, tags=resolve_tags({
        MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_PROJECT_ENTRY_POINT: step,
        MLFLOW_SOURCE_TYPE: "PROJECT", MLFLOW_SOURCE_NAME: str(project), "step": step,
        **own, **(tags or {})}))
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in parameters.items()])
    failed = UserError(f"step '{step}' failed (run {run_id}); its error is printed above, "
                       "and the run's logs are in MLflow")
    # AGNEWS_INLINE_STEPS=1: in this process (agnews.tracking.inline), one step at a time;
    # `own_process` keeps a step that must run beside others (a sweep's n_jobs) in its own
    if inline_steps() and not own_process:
        if run_inline(project, step, parameters, run_id) != 0:
            raise failed
    elif forking():  # a process of its own, forked from the warm server (agnews.tracking.warm)
        if run_forked(project, step, parameters, run_id) != 0:
            raise failed
    else:
        try:
            mlflow.projects.run(str(project), entry_point=step, parameters=parameters,
                                env_manager="local", experiment_id=experiment_id,
                                run_id=run_id, synchronous=True)
        except ExecutionException:
            raise failed from None
    if key is not None:  # None: the caller decides whether the run may be reused
        client.set_tag(run_id, "cache_key", key)
    return run_id


def steps_to_run(client, experiment_id: str, keys: dict[str, str], forced: set[str]) -> list[str]:
    """The steps that have no FINISHED run of their key in the experiment, or are forced: what
    `run_or_reuse` will run, unless a concurrent identical run finishes one first."""
    return [step for step, key in keys.items()
            if step in forced or not find_cached(client, experiment_id, step, key)]


def run_or_reuse(client, step: str, key: str, parameters, experiment_id: str,
                 parent_run_id: str, who: str = "main", forced: bool = False) -> tuple[str, bool]:
    """The run of `step` with cache key `key`: a FINISHED one of the experiment if there is
    one (and the step is not `forced`), else a new child run of `parent_run_id`. Returns
    (run id, reused). `parameters` is a callable giving the step's parameters, asked only
    when the step runs. Held under the key's lock, so a concurrent identical run waits, then
    reuses this one. Runs of this key left RUNNING by a process that died are marked KILLED
    first (`agnews.tracking.stale`)."""
    with step_lock(key, step):
        stale = close_stale(client, experiment_id, step, key)
        if stale:
            print(f"{who}: {step}: marked {len(stale)} run(s) KILLED that a process which died "
                  f"left RUNNING ({', '.join(stale)})", flush=True)
        cached = None if forced else find_cached(client, experiment_id, step, key)
        if cached:
            print(f"{who}: {step} reused {cached} (cached)", flush=True)
            return cached, True
        print(f"{who}: {step} running", flush=True)
        return run_child(step, parameters(), experiment_id, key, parent_run_id), False


def close_parent(done: dict[str, str]) -> tuple[dict[str, float], dict[str, str], str]:
    """On the active (parent) run: the final test metrics, what the registry did and a link
    to the report, from the step runs `done`; returns them for the closing line."""
    import mlflow

    final = mlflow.get_run(done["evaluate"]).data.metrics
    mlflow.log_metrics({k: final[k] for k in TEST_METRICS + TEST_INTERVALS if k in final})
    registry = registry_summary(mlflow.get_run(done["register"]).data.tags)
    mlflow.set_tag("registered", registry["registered"])
    if registry["model_uri"]:
        mlflow.set_tag("registered_model_uri", registry["model_uri"])
    report_uri = f"runs:/{done['report']}/report/report.html"
    mlflow.set_tag("report", report_uri)
    mlflow.set_tag("mlflow.note.content",
                   f"Test accuracy {final['test_accuracy']:.4f}, F1 {final['test_f1']:.4f}."
                   f" {registry['line']}. Report: {report_uri}")
    return final, registry, report_uri


def registry_summary(tags: dict[str, str]) -> dict[str, str]:
    """What the register run did, for the parent's tags and the closing line."""
    if tags.get("registered") != "true":
        return {"registered": "false", "model_uri": "",
                "line": f"not registered ({tags.get('decision', 'gate not passed')})"}
    uri = f"models:/{tags['registered_model']}/{tags['registered_version']}"
    alias = tags.get("alias")
    return {"registered": "true", "model_uri": uri,
            "line": f"registered {uri}" + (f" (@{alias})" if alias else "")}
