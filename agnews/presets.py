"""Named sets of parameter values for `main` (`-P preset=<name>`).

A preset fills the parameters left at their defaults; a parameter given another value on the
command line keeps it. One given at its default value cannot be told apart from one not given
(`mlflow run` passes every default along), so the preset's value applies to it. Each preset's
figures, and the command that measures them, are in docs/performance.md.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agnews.errors import UserError

PRESETS: dict[str, dict[str, object]] = {
    # Every local train row and the whole test split, as docs/performance.md ("All the data")
    # measures it: 22,000 rows need more epochs and a lower rate than the 1,000 of the
    # defaults, fixing the two lowest layers buys speed for little accuracy, and label
    # smoothing is the one change tried there that ended more accurate.
    "full": {"train_size": 0, "test_size": 0, "epochs": 4, "learning_rate": 1e-4,
             "freeze_layers": 2, "label_smoothing": 0.1},
}


def check_preset(name: str) -> None:
    if name and name not in PRESETS:
        raise UserError(f"preset='{name}' is not one of {', '.join(PRESETS)}: pass e.g. "
                        "-P preset=full, or leave it empty")


def apply_preset(name: str, configs: Sequence) -> list:
    """`configs` (config dataclass instances) with preset `name`'s value in every field that
    still holds its default; "" = no preset, the configs as given."""
    check_preset(name)
    values = PRESETS.get(name, {})
    out = []
    for config in configs:
        fields = {f.name: f.default for f in dataclasses.fields(config)}
        chosen = {k: v for k, v in values.items()
                  if k in fields and getattr(config, k) == fields[k]}
        out.append(dataclasses.replace(config, **chosen))
    return out
