"""The `sweep` entry point: search training settings with Optuna, each trial a nested train run,
then evaluate, register and report the best trial's model as `main` would.

One parent run; each trial is a child run of the `train` entry point (named `trial <n>` and its
values) that hands every epoch's val_loss to Optuna, whose median pruner may stop it
(`pruned=true`). Ingest and tokenize run once per distinct data setting and are reused
through the step cache. Trials are ranked by the val_loss of the epoch they keep, never by
test rows (each completed trial is a whole train run, whose parity gate compares runtimes on
val and test rows, unless a trial finished before it had a lower val_loss: then it cannot be
the best, tries no other runtime and is not reused by a later main): the test metrics come
from the evaluate step of the best trial, which then meets the register gate; the report gets
a search section. The parent logs the study's plots (`plots/search_*`), `search/trials.csv`,
the trial counts, and the best trial's values (`best.<name>` params).

The study lives in a journal file (or `-P storage=`, a database), so a killed sweep continues
with `-P study=<name>`: finished trials stay, the trial that was running is marked failed.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import (
    DataConfig,
    EvalConfig,
    RegisterConfig,
    ReportConfig,
    SweepConfig,
    TokenizeConfig,
    TrainConfig,
)
from agnews.errors import UserError
from agnews.heap import long_lived
from agnews.search.space import TUNABLE, parse_space, suggest
from agnews.search.study import (
    close_stale,
    finished,
    is_journal,
    open_study,
    storage_location,
    study_lock,
    study_name,
)
from agnews.search.trials import apply, kept_epoch_scores, study_summary, trial_title
from agnews.tracking.pins import go_offline_if_unreachable, pin_revisions
from agnews.tracking.pipeline import (
    close_parent,
    headline,
    run_child,
    run_or_reuse,
    step_parameters,
)
from agnews.tracking.step_cache import step_keys
from agnews.tracking.titles import run_title
from agnews.tracking.warm import serve_steps, start_server

# Deferred imports: mlflow and optuna load in the functions that use them, after the arguments
# parse: a bad parameter or search space gets its one-line error at once.

# Trials train in one process; the training settings a trial may vary are set through the
# space (a fixed value there: `epochs=3`), so a value has one place to come from.
# max_steps too: a trial's length is its epochs, which the pruner compares across trials.
EXCLUDED = ({"checkpoint_dir", "num_processes", "sweep_run", "max_steps"}
            | (set(TUNABLE) - {"train_size"}))


class TrainFailed(UserError):
    """One trial's train run failed (e.g. out of memory at its batch size): the trial fails,
    the sweep goes on. A failed ingest or tokenize stops the sweep: every trial needs them."""


class BaseConfigs(NamedTuple):
    """Every step's settings before a trial's values are applied."""

    data: DataConfig
    tok: TokenizeConfig
    train: TrainConfig
    ev: EvalConfig
    reg: RegisterConfig
    rep: ReportConfig


@dataclass
class Sweep:
    """What every trial shares: the study, the base configs, the parent run."""

    study: Any
    name: str
    location: str
    searched: dict
    configs: BaseConfigs
    experiment_id: str = ""
    parent_id: str = ""
    trials_at_once: int = 1  # n_jobs: above 1, each trial's train is a process of its own

    def step_configs(self, values: dict, report: ReportConfig | None = None) -> dict:
        """Each step's configs for a trial with `values`."""
        data, tok, train, ev, reg, rep = self.configs
        data, train = apply(values, data, train)
        return {"ingest": (data,), "tokenize": (tok,), "train": (train,), "evaluate": (ev,),
                "register": (reg, ev), "report": (report or rep,)}


def main(argv=None) -> None:
    quiet_libraries()
    (data, tok, train, ev, reg, rep, sw), _ = parse(
        "sweep", argv, [DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig,
                        ReportConfig, SweepConfig], exclude=EXCLUDED)
    searched, fixed = parse_space(sw.space)  # every mistake in it stops here, before a trial
    data, train = apply(fixed, data, train)
    name = study_name(sw.study)
    location = storage_location(name, sw.storage)
    data, tok, train, pins = pin_revisions(data, tok, train)
    go_offline_if_unreachable(pins)
    start_server("sweep")  # its imports overlap the sweep's own start (agnews.tracking.warm)
    # What the study searches: continuing it with anything else is refused
    settings = {**config_params(data, tok, train),
                "space": " ".join(d.describe() for d in searched.values())}
    import mlflow
    import optuna

    from agnews.tracking.runs import name_run
    from agnews.tracking.server import fail_fast
    from agnews.tracking.stale import process_tags

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with study_lock(name, location):
        study = open_study(name, location, settings, sw.pruner_startup_trials, data.seed)
        sweep = Sweep(study, name, location, searched,
                      BaseConfigs(data, tok, train, ev, reg, rep), trials_at_once=sw.n_jobs)
        with long_lived(), mlflow.start_run() as parent, fail_fast():
            sweep.experiment_id, sweep.parent_id = parent.info.experiment_id, parent.info.run_id
            name_run(run_title(config_params(sw), config_params(SweepConfig()), head="sweep"))
            mlflow.set_tags(process_tags())
            logged = mlflow.get_run(sweep.parent_id).data.params
            mlflow.log_params({k: v for k, v in {**settings, **config_params(ev, reg, rep, sw)}
                               .items() if k not in logged and k not in searched})
            mlflow.set_tags({"step": "sweep", "sweep.study": name, "sweep.storage": location})
            close_killed_trials(sweep)
            remaining = sw.n_trials - finished(study)
            print(f"sweep: study '{name}' in {location}: {finished(study)} trial(s) finished, "
                  f"{max(remaining, 0)} to run" + (f", {sw.n_jobs} at once" if sw.n_jobs > 1
                                                   else ""), flush=True)
            if remaining > 0:
                study.optimize(lambda trial: run_trial(sweep, trial), n_trials=remaining,
                               n_jobs=sw.n_jobs, catch=(TrainFailed,),
                               timeout=sw.timeout_minutes * 60 or None)
            best = log_search(sweep)
            final, registry, report_uri = evaluate_best(sweep, best)
    print(f"sweep: done. best trial {best['number']}: {headline(final)}  {registry['line']}  "
          f"report {report_uri}")


def close_killed_trials(sweep: Sweep) -> None:
    """Mark failed the trials a killed sweep left running, and KILLED their train runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for trial in close_stale(sweep.study, is_journal(sweep.location)):
        for run in client.search_runs([sweep.experiment_id], filter_string=(
                f"tags.`sweep.study` = '{sweep.name}' and tags.`sweep.trial` = "
                f"'{trial.number}' and attributes.status = 'RUNNING'")):
            client.set_terminated(run.info.run_id, "KILLED")
        print(f"sweep: trial {trial.number} was left running by a killed sweep: failed")


def run_trial(sweep: Sweep, trial) -> float:
    """One trial: its values, ingest and tokenize (reused when cached), its train run; the
    val_loss of the epoch it kept. Raises optuna.TrialPruned if the pruner stopped it."""
    import optuna
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    values = suggest(trial, sweep.searched)
    configs = sweep.step_configs(values)
    keys, done = step_keys(configs), {}
    for step in ("ingest", "tokenize"):
        done[step], _ = run_or_reuse(
            client, step, keys[step], lambda step=step: step_parameters(configs, done)[step],
            sweep.experiment_id, sweep.parent_id, who=f"sweep: trial {trial.number}")
        trial.set_user_attr(f"{step}_run", done[step])
    title = trial_title(trial.number, values)
    print(f"sweep: {title} training", flush=True)
    try:
        run_id = run_child(
            "train", {**step_parameters(configs, done)["train"], "sweep_study": sweep.name,
                      "sweep_storage": sweep.location, "sweep_trial": str(trial.number)},
            sweep.experiment_id, None, sweep.parent_id, run_name=title,
            tags={"sweep.study": sweep.name, "sweep.trial": str(trial.number)},
            own_process=sweep.trials_at_once > 1)  # trials at once, even with inline steps
    except UserError as err:
        raise TrainFailed(str(err)) from None
    trial.set_user_attr("run_id", run_id)
    run = client.get_run(run_id)
    if run.data.tags.get("pruned") == "true":
        raise optuna.TrialPruned()
    history = {m: [(p.step, p.value) for p in client.get_metric_history(run_id, m)]
               for m in ("val_loss", "val_accuracy", "val_f1")}
    scores = kept_epoch_scores(history, int(run.data.metrics["best_epoch"]))
    for metric in ("val_accuracy", "val_f1"):
        trial.set_user_attr(metric, scores[metric])
    # Only a completed trial whose runtimes were compared carries the key: a later main with
    # these values reuses its model. One an earlier trial beat scores with PyTorch untried,
    # which a main of its own would not: such a main trains anew.
    if run.data.tags.get("sweep.runtimes_compared") != "false":
        client.set_tag(run_id, "cache_key", keys["train"])
    return scores["val_loss"]


def log_search(sweep: Sweep) -> dict:
    """On the parent run: the trial counts, the plots, every trial, and the best trial."""
    import mlflow

    from agnews.search.plots import search_figures
    from agnews.tracking.runs import log_figure

    summary = study_summary(sweep.study)
    mlflow.log_metrics({k: float(v) for k, v in summary["counts"].items()})
    for file, figure in search_figures(sweep.study).items():
        log_figure(figure, f"plots/{file}")
    mlflow.log_text(sweep.study.trials_dataframe().to_csv(index=False), "search/trials.csv")
    best = summary["best"]
    if best is None:
        raise UserError(f"no trial of study '{sweep.name}' completed (see the failed trial "
                        "runs and their errors above): fix the cause and continue it with "
                        f"-P study={sweep.name}")
    mlflow.log_params({f"best.{k}": v for k, v in best["params"].items()})
    mlflow.log_metrics({f"best_{k}": best[k]
                        for k in ("val_loss", "val_accuracy", "val_f1") if k in best})
    mlflow.set_tags({"best_trial": str(best["number"]), "best_run": best["run_id"]})
    print(f"sweep: best is {trial_title(best['number'], best['params'])}, val_loss "
          f"{best['val_loss']:.4f}; testing its model once", flush=True)
    return best


def evaluate_best(sweep: Sweep, best: dict):
    """The best trial's model through evaluate (the one look at the test split), register
    and report, as main runs them; returns `close_parent`'s summary."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    configs = sweep.step_configs(best["params"], dataclasses.replace(
        sweep.configs.rep, sweep_run=sweep.parent_id))
    keys = step_keys(configs)
    done = {"ingest": best["ingest_run"], "tokenize": best["tokenize_run"],
            "train": best["run_id"]}
    for step in ("evaluate", "register", "report"):
        done[step], _ = run_or_reuse(client, step, keys[step],
                                     lambda step=step: step_parameters(configs, done)[step],
                                     sweep.experiment_id, sweep.parent_id, who="sweep")
        mlflow.set_tag(f"step.{step}.run_id", done[step])
    return close_parent(done)


if __name__ == "__main__":
    serve_steps()  # this process owns its steps and trials: fork them from a warm server
    run_step("sweep", main, sys.argv[1:])
