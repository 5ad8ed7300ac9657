"""Step 5, register: add the trained model to the Model Registry if it passes the gate.

Reads: `evaluate_run` (run id of an evaluate run): its `test_accuracy` and `test_f1`, its
`predictions.parquet` (this run's test texts and labels), and the model it scored (its
`input.model_uri` tag, so what is registered is exactly what was evaluated).

1. Gate: below `min_test_accuracy` or `min_test_f1` the model is not registered; the run
   still ends FINISHED, tagged `registered=false` with the reasons, and `main` goes on. With
   `gate_on=lower_bound` the low ends of the metrics' 95% intervals are compared instead.
2. Champion vs challenger: if `registered_model` has a version with alias `champion`, that
   version is re-scored here on the same test texts (its old numbers came from other rows),
   and the two are compared row by row (agnews/registry/paired.py): with `promote=better`
   the new version takes `champion` only if McNemar's exact test finds it more often right at
   `promote_alpha`; with `promote=not_worse`, if Tango's score test finds it worse by less than
   `promote_margin`. Otherwise it gets `challenger`. The first version becomes champion.
3. Model card: the new version's model files get a Hugging Face model card, README.md
   (agnews/registry/card.py), also logged as this run's `model_card/README.md` and linked from
   the version's description.
Writes: tags `registered` (true/false), `outcome` (first, champion, challenger, gate, or
already: this model is registered already), `registered_model`, `registered_version`,
`alias`, `decision` (the numbers and the verdict, in words), `promotion_test`,
`promotion_verdict`, `model_card` (its URI), `champion_version`; metrics `candidate_test_f1`,
`candidate_test_accuracy` (with their `_ci_low` / `_ci_high`) and, when there was a champion,
`champion_test_f1`, `champion_test_accuracy`, `paired_rows`, `only_candidate_right`,
`only_champion_right` and `promotion_p`.
"""
from __future__ import annotations

import sys

import mlflow
from mlflow.tracking import MlflowClient

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import EvalConfig, RegisterConfig
from agnews.errors import UserError
from agnews.registry.paired import Paired
from agnews.registry.policy import decide, gate_failures
from agnews.registry.versions import (
    attach_card,
    card_facts,
    champion_version,
    evaluated_rows,
    model_run_id,
    register_version,
    rescore,
    same_source_version,
)
from agnews.tracking.locks import registry_lock
from agnews.tracking.runs import step_run

# The candidate's numbers as the register run shows them: the values and their 95% intervals.
CANDIDATE_METRICS = tuple(f"test_{m}{end}" for m in ("f1", "accuracy")
                          for end in ("", "_ci_low", "_ci_high"))


def evaluated_model(client: MlflowClient, run_id: str):
    """The evaluate run `run_id` and the URI of the model it scored; one line if it is none."""
    try:
        evaluated = client.get_run(run_id)
    except Exception:
        raise UserError(f"evaluate_run '{run_id}' is not a run in this tracking store: pass the "
                        "run id of a finished evaluate run") from None
    model_uri = evaluated.data.tags.get("input.model_uri")
    if evaluated.data.tags.get("step") != "evaluate" or not model_uri:
        raise UserError(f"run {run_id} is not an evaluate run (no input.model_uri tag): pass "
                        "the run id of a finished evaluate run")
    return evaluated, model_uri


def decide_and_register(client: MlflowClient, cfg: RegisterConfig, ev: EvalConfig, evaluated,
                        model_uri: str) -> str:
    """On the active run, holding the registry lock: register the model unless it already is,
    as champion or challenger against the champion re-scored on the same rows; returns the
    console line."""
    metrics, name = evaluated.data.metrics, cfg.registered_model
    # Champion read, registration and alias as one decision: a second register of the same
    # model waits, then compares against whoever is champion by then.
    with registry_lock(name):
        existing = same_source_version(client, name, model_run_id(model_uri))
        if existing is not None:  # the cache was bypassed: the same model is already in
            mlflow.set_tags({"registered": "true", "outcome": "already", "registered_model": name,
                             "registered_version": existing.version,
                             "decision": f"already registered as version {existing.version}"})
            return f"register: {name} version {existing.version} is this model already; " \
                   "nothing to do"
        champion = champion_version(client, name)
        table = None
        if champion is not None:
            test = evaluated_rows(evaluated.info.run_id)
            champion_scores, champion_right = rescore(champion, test, ev)
            table = Paired.of(test["predicted"].to_numpy() == test["label"].to_numpy(),
                              champion_right)
            mlflow.log_metrics({**{f"champion_{k}": v for k, v in champion_scores.items()},
                                "paired_rows": table.rows,
                                "only_candidate_right": table.only_candidate,
                                "only_champion_right": table.only_champion})
        decision = decide(table, champion and champion.version, cfg)
        if decision.p is not None:
            mlflow.log_metric("promotion_p", decision.p)
        scores = {k: f"{metrics[k]:.4f}" for k in ("test_f1", "test_accuracy")}
        version = register_version(client, name, model_uri, decision.alias, scores)
        card = attach_card(client, card_facts(client, evaluated, model_uri, name, version,
                                              decision.alias, decision.reason), model_uri)
        mlflow.set_tags({"registered": "true", "registered_model": name, "model_card": card,
                         "registered_version": version, "alias": decision.alias,
                         "outcome": decision.outcome, "decision": decision.reason,
                         "promotion_test": decision.test,
                         "promotion_verdict": decision.verdict,
                         "champion_version": champion.version if champion else ""})
    return f"register: {name} version {version} is now '{decision.alias}': {decision.reason}"


def main(argv=None) -> None:
    quiet_libraries()
    (cfg, ev), uris = parse("register", argv, [RegisterConfig, EvalConfig],
                            {"evaluate_run": "run id of the evaluate run whose model to register"})
    client = MlflowClient()
    evaluated, model_uri = evaluated_model(client, uris.evaluate_run)
    metrics = evaluated.data.metrics
    with step_run("register", config_params(cfg, ev), {"evaluate_run": uris.evaluate_run,
                                                       "model_uri": model_uri}):
        mlflow.log_metrics({f"candidate_{k}": metrics[k] for k in CANDIDATE_METRICS
                            if k in metrics})
        failures = gate_failures(metrics, cfg)
        if failures:
            mlflow.set_tags({"registered": "false", "outcome": "gate",
                             "registered_model": cfg.registered_model,
                             "decision": "; ".join(failures)})
            print(f"register: not registered in '{cfg.registered_model}': "
                  + "; ".join(failures) + " (the gate is -P min_test_accuracy / min_test_f1, "
                  f"on the {'95% lower bound' if cfg.gate_on == 'lower_bound' else 'value'})")
            return
        line = decide_and_register(client, cfg, ev, evaluated, model_uri)
    print(line)


if __name__ == "__main__":
    run_step("register", main, sys.argv[1:])
