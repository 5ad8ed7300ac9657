"""The hyperparameter search space: its default, the `-P space=` syntax that narrows or widens
it, and drawing one trial's parameters from it with Optuna.

Syntax, space-separated entries, each replacing the default of its parameter:
  `name=low:high` a range (int for int parameters), `name=low:high:log` on a log scale,
  `name=a,b,c` a choice, `name=value` a fixed value (the parameter leaves the search).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from agnews.config import DataConfig, TrainConfig
from agnews.errors import UserError

# What a trial may vary: training settings, and the number of training rows.
TUNABLE = {f.name: f.type for f in dataclasses.fields(TrainConfig)
           if f.name in ("learning_rate", "label_smoothing", "epochs", "train_batch_size",
                         "freeze_embeddings",
                         "freeze_layers", "micro_batch_tokens", "select_best")}
TUNABLE["train_size"] = {f.name: f.type for f in dataclasses.fields(DataConfig)}["train_size"]
# A searched cap is a token count; a space that leaves it out trains with auto.
TUNABLE["micro_batch_tokens"] = "int"
# Settable for every trial, never varied: they change what val_loss measures, so trials that
# differ in them cannot be ranked by it.
UNRANKABLE = {"label_smoothing": "smoothing raises by itself whatever it does to accuracy"}
EXAMPLES = {"micro_batch_tokens": "micro_batch_tokens=0,512, or leave it out for auto"}
DEFAULT_SPACE = ("learning_rate=3e-5:5e-4:log epochs=1:4 train_batch_size=8,16,32 "
                 "freeze_embeddings=true,false")


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a range (`low`..`high`, maybe `log`) or `choices`."""

    name: str
    kind: str                        # "int" | "float" | "bool"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return f"{self.name}=" + ",".join(show(c) for c in self.choices)
        return f"{self.name}={show(self.low)}:{show(self.high)}" + (":log" if self.log else "")


def show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _value(name: str, kind: str, text: str) -> Any:
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        return int(text) if kind == "int" else float(text)
    except ValueError:
        raise UserError(f"space: {name}={text} is not a{'n' if kind == 'int' else ''} {kind}: "
                        f"pass e.g. {_example(name)}") from None


def _example(name: str) -> str:
    return EXAMPLES.get(name) or next(
        (entry for entry in DEFAULT_SPACE.split() if entry.startswith(f"{name}=")), f"{name}=1:4")


def parse_entry(entry: str) -> tuple[str, Dimension | Any]:
    """One `name=...` entry: (name, a Dimension) or (name, a fixed value)."""
    name, sep, spec = entry.partition("=")
    if not sep or not name or not spec:
        raise UserError(f"space: '{entry}' is not name=low:high, name=a,b or name=value: "
                        f"pass e.g. -P space=\"{DEFAULT_SPACE.split()[0]}\"")
    if name not in TUNABLE:
        raise UserError(f"space: unknown parameter '{name}': the space takes "
                        f"{', '.join(sorted(TUNABLE))}")
    kind = TUNABLE[name]  # the field's annotation, a string: config.py defers annotations
    if "," in spec:
        choices = tuple(_value(name, kind, part) for part in spec.split(","))
        if len(set(choices)) < 2:
            raise UserError(f"space: {entry} offers one value: give two or more, or name=value")
        return name, Dimension(name, kind, choices=choices)
    if ":" not in spec:
        return name, _value(name, kind, spec)
    parts = spec.split(":")
    log = len(parts) == 3 and parts[2] == "log"
    if kind == "bool" or len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        raise UserError(f"space: {entry} is not a range: pass e.g. {_example(name)}")
    low, high = _value(name, kind, parts[0]), _value(name, kind, parts[1])
    if low >= high:
        raise UserError(f"space: {entry} is an empty range: give low:high with low < high")
    if log and low <= 0:
        raise UserError(f"space: {entry} starts at {parts[0]} on a log scale: give low > 0")
    return name, Dimension(name, kind, low, high, log)


def parse_space(text: str, base: str = DEFAULT_SPACE) -> tuple[dict[str, Dimension],
                                                                 dict[str, Any]]:
    """The searched dimensions and the fixed values: `base`'s entries, each replaced by the
    entry of the same name in `text`."""
    entries: dict[str, Dimension | Any] = {}
    for source in (base, text):
        seen = set()
        for entry in source.split():
            name, parsed = parse_entry(entry)
            if name in seen:
                raise UserError(f"space: {name} is given twice: keep one entry per parameter")
            seen.add(name)
            entries[name] = parsed
    searched = {n: d for n, d in entries.items() if isinstance(d, Dimension)}
    unrankable = sorted(set(searched) & set(UNRANKABLE))
    if unrankable:
        name = unrankable[0]
        raise UserError(f"space: {name} cannot be searched: trials are ranked by val_loss, "
                        f"plain cross-entropy, which {UNRANKABLE[name]} (docs/search.md); "
                        f"fix it for every trial instead, e.g. {name}=0.1")
    if not searched:
        raise UserError("space: nothing left to search (every parameter is fixed): give a "
                        "range or a choice, e.g. learning_rate=3e-5:5e-4:log")
    return searched, {n: v for n, v in entries.items() if not isinstance(v, Dimension)}


def suggest(trial, space: dict[str, Dimension]) -> dict[str, Any]:
    """One trial's values, drawn by Optuna's `trial` from `space`."""
    values = {}
    for name, dim in space.items():
        if dim.choices:
            values[name] = trial.suggest_categorical(name, list(dim.choices))
        elif dim.kind == "int":
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        else:
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return values
