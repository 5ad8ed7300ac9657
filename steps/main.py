"""The `main` entry point: ingest → tokenize → train → evaluate → register → report, nested.

Each step runs its MLproject command in a child run of this (parent) run
(`mlflow.parentRunId`), a process of its own: on Linux forked from a warm server that has
imported the libraries once (`agnews.tracking.warm`), elsewhere started by
`mlflow.projects.run`. Steps receive their inputs as `runs:/<upstream run>/<artifact>` URIs.
Before starting a step, main computes its cache key (`agnews.tracking.step_cache`): a FINISHED
run of the experiment with the same key is reused instead (`step.<name>.cached=true`).
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

import contextlib
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
from agnews.heap import long_lived
from agnews.presets import apply_preset
from agnews.tracking.pins import go_offline_if_unreachable, pin_revisions
from agnews.tracking.pipeline import (
    close_parent,
    headline,
    run_or_reuse,
    step_parameters,
    steps_to_run,
)
from agnews.tracking.step_cache import STEPS, forced_steps, step_keys
from agnews.tracking.titles import run_title
from agnews.tracking.warm import serve_steps, start_server, use_server, worth_a_server

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.

CHECKPOINTS = PROJECT_DIR / ".checkpoints"


def main(argv=None) -> None:
    quiet_libraries()
    # Building every config first validates every parameter before any step starts.
    (data, tok, train, ev, reg, rep, cfg), _ = parse(
        "main", argv, [DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig,
                       ReportConfig, MainConfig], exclude={"checkpoint_dir", "sweep_run"})
    forced = forced_steps(cfg.force, STEPS)
    data, tok, train, ev, reg, rep = apply_preset(cfg.preset, (data, tok, train, ev, reg, rep))
    title = run_title(config_params(data, tok, train, ev, reg, rep), config_params(
        *apply_preset(cfg.preset, (DataConfig(), TokenizeConfig(), TrainConfig(), EvalConfig(),
                                   RegisterConfig(), ReportConfig()))),
        head=" ".join(["main", f"preset={cfg.preset}"] if cfg.preset else ["main"]))
    data, tok, train, pins = pin_revisions(data, tok, train)
    for flag, pin in pins.items():
        print(f"main: {flag} {pin.repo_id} at {pin.sha[:12]} ("
              + ("from the Hub" if pin.online else "from the local cache") + ")", flush=True)
    go_offline_if_unreachable(pins)
    start_server("main")  # its imports overlap main's own start (agnews.tracking.warm)
    configs = {"ingest": (data,), "tokenize": (tok,), "train": (train,), "evaluate": (ev,),
               "register": (reg, ev), "report": (rep,)}
    keys = step_keys(configs)
    configs["train"] = (dataclasses.replace(train,
                                            checkpoint_dir=str(CHECKPOINTS / keys["train"])),)
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.tracking.runs import name_run
    from agnews.tracking.server import fail_fast
    from agnews.tracking.stale import process_tags

    client = MlflowClient()
    with long_lived(), mlflow.start_run() as parent, fail_fast():
        experiment_id = parent.info.experiment_id
        # forked from the warm server only where a step that loads torch will run
        use_server(worth_a_server(steps_to_run(client, experiment_id, keys, forced)))
        name_run(title)
        mlflow.set_tags(process_tags())
        for flag, pin in pins.items():
            mlflow.set_tags({f"{flag}.revision": pin.sha,
                             f"{flag}.source": "hub" if pin.online else "cache"})
        done: dict[str, str] = {}
        for step in STEPS:
            mlflow.set_tag(f"step.{step}.cache_key", keys[step])
            try:
                done[step], cached = run_or_reuse(
                    client, step, keys[step],
                    lambda step=step: step_parameters(configs, done)[step],
                    experiment_id, parent.info.run_id, forced=step in forced)
            except UserError:
                mlflow.set_tag("failed_step", step)
                raise
            if cached:
                mlflow.set_tag(f"step.{step}.cached", "true")
            mlflow.set_tag(f"step.{step}.run_id", done[step])
            if step == "train":
                # train deletes its checkpoint once its run is the record; its folder would stay
                # behind in the checkout, one per train configuration ever run
                with contextlib.suppress(OSError):  # gone, or holding a crash's checkpoint
                    (CHECKPOINTS / keys["train"]).rmdir()
        final, registry, report_uri = close_parent(done)
    print(f"main: done. {headline(final)}  {registry['line']}  report {report_uri}")

if __name__ == "__main__":
    serve_steps()  # this process owns its steps: fork them from a warm server
    run_step("main", main, sys.argv[1:])
