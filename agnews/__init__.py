"""The library the entry points in `steps/` share: pure functions and the MLflow plumbing.

- `agnews.data`: where rows come from (Hub, folders, files), sampling, profiles, token ids.
- `agnews.model`: loading the pretrained model, batching and scoring, device and precision,
  the logged MLflow model.
- `agnews.training`: the training loop, its checkpoints, training across processes, its curves.
- `agnews.evaluation`: metrics, prediction tables, evaluation plots.
- `agnews.report`: the report's facts, content, conclusions, wording and rendering.
- `agnews.tracking`: MLflow runs, lineage, the step cache, locks, runs a crash left
  RUNNING, chaining the steps.
- `agnews.registry`: the register step's promotion policy and its Model Registry calls.
- `agnews.search`: the `sweep` entry point's space, Optuna study, pruning hook, trials, plots.
- `agnews.monitoring`: the `monitor` entry point's drift checks, reference, batches, series.
- `agnews.config`, `agnews.cli`, `agnews.errors`, `agnews.hub`: parameters, their parsing,
  one-line errors, and pinning a Hub id to a commit.
"""
from pathlib import Path

# The project folder (MLproject, steps/, agnews/): what MLflow runs, git describes, and where
# checkpoints and locks live.
PROJECT_DIR = Path(__file__).resolve().parents[1]
