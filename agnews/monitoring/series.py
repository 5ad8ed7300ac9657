"""One run per model that charts its batches: each monitored batch is a run of its own,
nested under its model's series run, which also holds every batch's drift metrics at
`step` = batch number, so the MLflow UI draws drift over time as lines."""
from __future__ import annotations

import time

from agnews.tracking.locks import held

# Deferred import: mlflow's Metric, only where a batch's metrics are written to the series run.

SERIES_TAG = "monitor.series"


def series_run(client, experiment_id: str, model: str) -> tuple[str, int]:
    """The series run of `model` (made at its first batch) and this batch's number. Held
    under a lock, so two monitors at once never share a number."""
    with held(f"monitor-{model}", f"monitor: waits for another monitor of {model}"):
        runs = client.search_runs([experiment_id], max_results=1,
                                  filter_string=f"tags.`{SERIES_TAG}` = '{model}'")
        if runs:
            run_id, done = runs[0].info.run_id, int(runs[0].data.tags.get("monitor.batches", 0))
        else:
            run = client.create_run(experiment_id, run_name=f"monitor {model}",
                                    tags={SERIES_TAG: model, "step": "monitor-series"})
            run_id, done = run.info.run_id, 0
            client.set_terminated(run_id, "FINISHED")
        client.set_tag(run_id, "monitor.batches", str(done + 1))
    return run_id, done + 1


def log_to_series(client, series_id: str, number: int, metrics: dict[str, float]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(series_id, metrics=[Metric(k, v, now, number) for k, v in metrics.items()])
