"""What a sweep makes of one trial and of the whole study: the trial's configs, its score on the
validation split (never the test split), its run's name, and the study's summary."""
from __future__ import annotations

import dataclasses
from typing import Any

from agnews.config import DataConfig, TrainConfig
from agnews.search.space import show

# Deferred import: optuna's TrialState, only where trials are summarised.

DATA_FIELDS = {f.name for f in dataclasses.fields(DataConfig)}


def apply(values: dict[str, Any], data: DataConfig, train: TrainConfig
          ) -> tuple[DataConfig, TrainConfig]:
    """The data and train configs with a trial's (or the space's fixed) values in place."""
    return (dataclasses.replace(data, **{k: v for k, v in values.items() if k in DATA_FIELDS}),
            dataclasses.replace(train, **{k: v for k, v in values.items()
                                          if k not in DATA_FIELDS}))


def trial_title(number: int, values: dict[str, Any]) -> str:
    """`trial 3 learning_rate=0.00012 epochs=2 ...`: the run name in the runs table."""
    shown = " ".join(f"{k}={show(v) if not isinstance(v, float) else f'{v:.2g}'}"
                     for k, v in values.items())
    return f"trial {number} {shown}"


def kept_epoch_scores(history: dict[str, list[tuple[int, float]]], best_epoch: int
                      ) -> dict[str, float]:
    """The validation metrics of the epoch whose weights the trial's model holds (train's
    `best_epoch`): `val_loss` is what the study minimises; the test split is never read."""
    return {name: dict(points)[best_epoch] for name, points in history.items()
            if best_epoch in dict(points)}


def study_summary(study) -> dict[str, Any]:
    """Counts of trials by state, and the best trial's number, values and scores."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {f"trials_{s.name.lower()}": states.count(s)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    if not counts["trials_complete"]:
        return {"counts": counts, "best": None}
    best = study.best_trial
    return {"counts": counts,
            "best": {"number": best.number, "params": dict(best.params),
                     "val_loss": best.value, **{k: v for k, v in best.user_attrs.items()
                                                if k.startswith("val_")},
                     "run_id": best.user_attrs["run_id"],
                     "ingest_run": best.user_attrs["ingest_run"],
                     "tokenize_run": best.user_attrs["tokenize_run"]}}
