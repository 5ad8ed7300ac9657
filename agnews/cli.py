"""Argument parsing built from the config dataclasses, and the error boundary of every step.

Each step's `main` declares which config dataclasses it uses and which input URIs it reads;
the parser's flags are the dataclass field names, so `MLproject`, the CLI and the config can
never drift apart (a test checks MLproject against these parsers).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence

from agnews.errors import UserError
from agnews.heap import resume_full_collections, step_starting


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return value in {"true", "1", "yes"}


_CASTS = {"int": int, "float": float, "str": str, "bool": _boolean}


def build_parser(prog: str, configs: Sequence[type], inputs: dict[str, str],
                 exclude: frozenset[str] = frozenset()) -> argparse.ArgumentParser:
    """A parser with one `--name` per config field (deduplicated, less `exclude`) and one per
    input URI."""
    parser = argparse.ArgumentParser(prog=prog)
    seen: set[str] = set(exclude)
    for config in configs:
        for f in dataclasses.fields(config):
            if f.name in seen:
                continue
            seen.add(f.name)
            parser.add_argument(f"--{f.name}", type=_CASTS[f.type], default=f.default,
                                help=f.metadata.get("help", ""))
    for name, help_text in inputs.items():
        parser.add_argument(f"--{name}", required=True, help=help_text)
    return parser


def parse(prog: str, argv: Sequence[str] | None, configs: Sequence[type],
          inputs: dict[str, str] | None = None, exclude: set[str] | frozenset = frozenset()):
    """Parse argv into one instance per config class, plus a namespace of the input URIs.

    Config construction runs each dataclass's validation, so an impossible parameter raises
    `UserError` here, before the step touches any data or MLflow. Fields in `exclude` are not
    command-line options; they keep their defaults for the caller to set.
    """
    inputs = inputs or {}
    args = vars(build_parser(prog, configs, inputs, frozenset(exclude)).parse_args(argv))
    built = [config(**{f.name: args[f.name] for f in dataclasses.fields(config)
                       if f.name in args}) for config in configs]
    uris = argparse.Namespace(**{name: args[name] for name in inputs})
    return built, uris


def config_params(*configs) -> dict[str, str]:
    """The parameters of the given configs as MLflow logs them (strings)."""
    params: dict[str, str] = {}
    for config in configs:
        params.update({k: str(v) for k, v in dataclasses.asdict(config).items()})
    return params


def quiet_libraries() -> None:
    """Silence the chatter that buries a step's own output (download bars, HF advisories)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # tokenize prints its own
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Read by transformers when (and if) a step imports it: ingest, report and main never
    # do, and importing it here just to configure it would cost each of them a second.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL as it is imported (INFO unless
    # set): before that, the variable (which main's steps inherit); after, the level alone, so a
    # process that calls a step in-process (the tests) keeps its environment, and the `mlflow
    # run` it starts later still prints its run ids. A user's own MLFLOW_LOGGING_LEVEL wins.
    if "mlflow" in sys.modules:
        logging.getLogger("mlflow").setLevel(
            os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING").upper())
    else:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def run_step(name: str, main: Callable[[Sequence[str] | None], None],
             argv: Sequence[str] | None = None) -> None:
    """Run a step's `main` with the tracking client's retry policy set
    (`agnews.tracking.server`); a `UserError`, or a tracking server that stopped answering,
    becomes one line on stderr and exit code 2."""
    from agnews.tracking import server
    from agnews.tracking.scratch import use_scratch

    server.set_retries()
    use_scratch()  # MLflow's downloads into temporary folders go with the process
    step_starting()  # the collector's passes, until the step's run starts and at exit
    try:
        main(argv)
    except UserError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        if not server.is_lost(err):
            raise
        server.give_up()
        mlflow = sys.modules.get("mlflow")  # a lost server means MLflow was imported
        uri = mlflow.get_tracking_uri() if mlflow else "(unknown)"
        print(f"{name}: error: {server.lost_line(uri)}", file=sys.stderr)
        sys.exit(2)
    finally:
        resume_full_collections()
