"""Everything the report states, gathered from the tracking store into `ReportFacts`: the
steps' parameters, metrics, tags, per-epoch history, tables, plots and the previous run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from agnews.errors import UserError
from agnews.evaluation.metrics import confusion_counts
from agnews.report.content import ReportFacts

# Deferred imports: mlflow, only where facts are gathered from runs; the report's pure functions
# and their tests need none.

# The runs the report reads; the step cache's UPSTREAM["report"] is the same (a test checks).
STEP_INPUTS = ("ingest", "tokenize", "train", "evaluate", "register")
COMPUTE_TAGS = ("device", "precision_train", "precision_score", "precision_reason", "scorer",
                "scorer_reason")
REGISTRY_TAGS = ("registered", "outcome", "registered_model", "registered_version", "alias",
                 "decision", "champion_version", "model_card", "promotion_verdict")


def epoch_history(histories: dict[str, list[tuple[int, float]]]) -> pd.DataFrame:
    """Per-epoch metric histories ({key: [(step, value)]}) as one row per epoch."""
    frame = pd.DataFrame({k: dict(v) for k, v in histories.items()}).sort_index()
    frame.index.name = "epoch"
    return frame.reset_index()


def previous_evaluation(client, current) -> dict | None:
    """The latest FINISHED evaluate run of the experiment that started before `current`."""
    runs = client.search_runs(
        [current.info.experiment_id],
        filter_string="tags.step = 'evaluate' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=50)
    earlier = [r for r in runs if r.info.start_time < current.info.start_time
               and r.info.run_id != current.info.run_id]
    return ({"run_id": earlier[0].info.run_id, "metrics": earlier[0].data.metrics}
            if earlier else None)


def search_facts(run) -> dict:
    """What the report says of the sweep `run` that chose the model."""
    m, tags = run.data.metrics, run.data.tags
    counts = {k: int(m.get(f"trials_{k}", 0)) for k in ("complete", "pruned", "fail")}
    return {"study": tags.get("sweep.study", ""), "trials": sum(counts.values()),
            "complete": counts["complete"], "pruned": counts["pruned"], "failed": counts["fail"],
            "best": tags.get("best_trial", ""), "val_loss": m.get("best_val_loss", float("nan")),
            "val_accuracy": m.get("best_val_accuracy", float("nan")),
            "params": {k[len("best."):]: v for k, v in run.data.params.items()
                       if k.startswith("best.")}}


def gather(run_ids: dict[str, str], lang: str, sweep_run: str = "") -> ReportFacts:
    """Everything the report needs, read from the tracking store (and, for a model a sweep
    chose, the sweep's run: its counts, best values and plots)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from agnews.tracking.runs import logged_table

    client = MlflowClient()
    runs = {}
    for step, run_id in {**run_ids, **({"sweep": sweep_run} if sweep_run else {})}.items():
        try:
            runs[step] = client.get_run(run_id)
        except Exception:
            raise UserError(f"{step}_run '{run_id}' is not a run in this tracking store: pass "
                            f"the run id of a finished {step} run") from None
    params: dict[str, str] = {}
    for step, run in runs.items():
        if step != "sweep":  # the sweep's own parameters describe the search, not the model
            params.update(run.data.params)
    train = runs["train"].info.run_id
    history = epoch_history({key: [(m.step, m.value) for m in client.get_metric_history(train, key)]
                             for key in runs["train"].data.metrics
                             if key.startswith(("train_", "val_")) and key != "train_loss_step"})
    evaluate = runs["evaluate"].info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        preds = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=evaluate, artifact_path="predictions.parquet", dst_path=tmp))
        images = {}
        for step, run in runs.items():
            if not any(a.path == "plots" for a in client.list_artifacts(run.info.run_id)):
                continue
            plots = Path(mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="plots", dst_path=f"{tmp}/{step}"))
            images.update({p.name: p.read_bytes() for p in sorted(plots.glob("*.png"))})
    return ReportFacts(
        params=params,
        metrics={s: r.data.metrics for s, r in runs.items() if s != "sweep"},
        run_ids={s: r.info.run_id for s, r in runs.items()}, history=history,
        per_class=logged_table(evaluate, "per_class_metrics.json"),
        confusion=confusion_counts(preds["label"].to_numpy(), preds["predicted"].to_numpy()),
        class_balance=logged_table(runs["ingest"].info.run_id, "class_balance.json"),
        mistakes=logged_table(evaluate, "most_confident_mistakes.json"),
        mean_confidence=float(preds["confidence"].mean()),
        previous=previous_evaluation(client, runs["evaluate"]),
        registry={k: v for k, v in runs["register"].data.tags.items()
                  if k in REGISTRY_TAGS},
        compute={k: v for k, v in runs["train"].data.tags.items() if k in COMPUTE_TAGS},
        images=images, lang=lang,
        search=search_facts(runs["sweep"]) if "sweep" in runs else None)
