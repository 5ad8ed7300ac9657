"""The `sweep` entry point: search training settings with Optuna, each trial a nested train run,
then evaluate, register and report the best trial's model as `main` would.

One parent run; each trial is a child run of the `train` entry point (named `trial <n>` and its
values) that hands every epoch's val_loss to Optuna, whose median pruner may stop it
(`pruned=true`). Ingest and tokenize run once per distinct data setting and are reused
through the step cache. Trials are ranked by the val_loss of the epoch they keep: the test
split is read once, by the evaluate step of the best trial, which then meets the register
gate; the report gets a search section. The parent logs the study's plots (`plots/search_*`),
`search/trials.csv`, the trial counts, and the best trial's values (`best.<name>` params).

The study lives in a journal file (or `-P storage=`, a database), so a killed sweep continues
with `-P study=<name>`: finished trials stay, the trial that was running is marked failed.
"""
from __future__ import annotations

import sys

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
from agnews.tracking.pipeline import (
    close_parent,
    go_offline_if_unreachable,
    pin_revisions,
    run_child,
    run_or_reuse,
    run_title,
    step_parameters,
)
from agnews.tracking.step_cache import step_keys

# Trials train in one process; the training settings a trial may vary are set through the
# space (a fixed value there: `epochs=3`), so a value has one place to come from.
EXCLUDED = {"checkpoint_dir", "num_processes", "sweep_run"} | (set(TUNABLE) - {"train_size"})


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
    settings = {**config_params(data, tok, train),
                "space": " ".join(d.describe() for d in searched.values())}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with study_lock(name, location):
        study = open_study(name, location, settings, sw.pruner_startup_trials, data.seed)
        run_sweep(study, name, location, settings, searched, (data, tok, train, ev, reg, rep, sw))


def run_sweep(study, name, location, settings, searched, configs) -> None:
    import mlflow
    import optuna
    from mlflow.tracking import MlflowClient

    from agnews.search.plots import search_figures
    from agnews.tracking.runs import log_figure, name_run

    data, tok, train, ev, reg, rep, sw = configs
    client = MlflowClient()
    with mlflow.start_run() as parent:
        experiment_id, parent_id = parent.info.experiment_id, parent.info.run_id
        name_run(run_title(config_params(sw), config_params(SweepConfig()), head="sweep"))
        logged = mlflow.get_run(parent_id).data.params
        mlflow.log_params({k: v for k, v in {**settings, **config_params(ev, reg, rep, sw)}
                           .items() if k not in logged and k not in searched})
        mlflow.set_tags({"step": "sweep", "sweep.study": name, "sweep.storage": location})
        for trial in close_stale(study, is_journal(location)):
            for run in client.search_runs([experiment_id], filter_string=(
                    f"tags.`sweep.study` = '{name}' and tags.`sweep.trial` = '{trial.number}' "
                    "and attributes.status = 'RUNNING'")):
                client.set_terminated(run.info.run_id, "KILLED")
            print(f"sweep: trial {trial.number} was left running by a killed sweep: failed")

        def objective(trial) -> float:
            values = suggest(trial, searched)
            trial_data, trial_train = apply(values, data, train)
            configs = {"ingest": (trial_data,), "tokenize": (tok,), "train": (trial_train,),
                       "evaluate": (ev,), "register": (reg, ev), "report": (rep,)}
            keys, done = step_keys(configs), {}
            for step in ("ingest", "tokenize"):
                done[step], _ = run_or_reuse(
                    client, step, keys[step], lambda: step_parameters(configs, done)[step],
                    experiment_id, parent_id, who=f"sweep: trial {trial.number}")
                trial.set_user_attr(f"{step}_run", done[step])
            print(f"sweep: {trial_title(trial.number, values)} training", flush=True)
            run_id = run_child(
                "train", {**step_parameters(configs, done)["train"], "sweep_study": name,
                          "sweep_storage": location, "sweep_trial": str(trial.number)},
                experiment_id, None, parent_id, run_name=trial_title(trial.number, values),
                tags={"sweep.study": name, "sweep.trial": str(trial.number)})
            trial.set_user_attr("run_id", run_id)
            run = client.get_run(run_id)
            if run.data.tags.get("pruned") == "true":
                raise optuna.TrialPruned()
            history = {m: [(p.step, p.value) for p in client.get_metric_history(run_id, m)]
                       for m in ("val_loss", "val_accuracy", "val_f1")}
            scores = kept_epoch_scores(history, int(run.data.metrics["best_epoch"]))
            for metric in ("val_accuracy", "val_f1"):
                trial.set_user_attr(metric, scores[metric])
            client.set_tag(run_id, "cache_key", keys["train"])  # a later main may reuse it
            return scores["val_loss"]

        remaining = sw.n_trials - finished(study)
        print(f"sweep: study '{name}' in {location}: {finished(study)} trial(s) finished, "
              f"{max(remaining, 0)} to run" + (f", {sw.n_jobs} at once" if sw.n_jobs > 1
                                               else ""), flush=True)
        if remaining > 0:
            study.optimize(objective, n_trials=remaining, n_jobs=sw.n_jobs, catch=(UserError,),
                           timeout=sw.timeout_minutes * 60 or None)
        summary = study_summary(study)
        mlflow.log_metrics({k: float(v) for k, v in summary["counts"].items()})
        for file, figure in search_figures(study).items():
            log_figure(figure, f"plots/{file}")
        mlflow.log_text(study.trials_dataframe().to_csv(index=False), "search/trials.csv")
        best = summary["best"]
        if best is None:
            raise UserError(f"no trial of study '{name}' completed (see the failed trial runs "
                            "and their errors above): fix the cause and continue it with "
                            f"-P study={name}")
        mlflow.log_params({f"best.{k}": v for k, v in best["params"].items()})
        mlflow.log_metrics({f"best_{k}": best[k]
                            for k in ("val_loss", "val_accuracy", "val_f1") if k in best})
        mlflow.set_tags({"best_trial": str(best["number"]), "best_run": best["run_id"]})
        print(f"sweep: best is {trial_title(best['number'], best['params'])}, val_loss "
              f"{best['val_loss']:.4f}; testing its model once", flush=True)
        trial_data, trial_train = apply(best["params"], data, train)
        configs = {"ingest": (trial_data,), "tokenize": (tok,), "train": (trial_train,),
                   "evaluate": (ev,), "register": (reg, ev),
                   "report": (ReportConfig(rep.report_lang, sweep_run=parent_id),)}
        keys = step_keys(configs)
        done = {"ingest": best["ingest_run"], "tokenize": best["tokenize_run"],
                "train": best["run_id"]}
        for step in ("evaluate", "register", "report"):
            done[step], _ = run_or_reuse(client, step, keys[step],
                                         lambda: step_parameters(configs, done)[step],
                                         experiment_id, parent_id, who="sweep")
            mlflow.set_tag(f"step.{step}.run_id", done[step])
        final, registry, report_uri = close_parent(done)
    print(f"sweep: done. best trial {best['number']}: test_accuracy {final['test_accuracy']:.4f}"
          f"  test_f1 {final['test_f1']:.4f}  {registry['line']}  report {report_uri}")


if __name__ == "__main__":
    run_step("sweep", main, sys.argv[1:])
