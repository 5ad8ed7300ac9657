"""The MLflow plumbing every step shares: its run, its parameters, and fetching its inputs.

Only the steps' `main` functions call these; the pure functions never see MLflow.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd

from agnews.errors import UserError
from agnews.heap import long_lived
from agnews.tracking.lineage import environment, git_state
from agnews.tracking.memory import peak_rss_mb
from agnews.tracking.server import fail_fast
from agnews.tracking.stale import process_tags

# Deferred imports: matplotlib.pyplot only where a figure is logged; `resource` is POSIX-only;
# MLflow's private name lists, guarded.


@contextlib.contextmanager
def step_run(step: str, params: dict[str, str], upstream: dict[str, str] | None = None,
             system_metrics: bool = False) -> Iterator[mlflow.ActiveRun]:
    """The step's MLflow run, tagged `step=<name>`, with its parameters logged.

    When the step's body ends without error, the run gets `peak_rss_mb`, the step process's
    peak memory (and `peak_gpu_mb` where it used a GPU), so a memory regression shows up per
    step in the runs table.

    Under `mlflow run` the run already exists (MLFLOW_RUN_ID) and holds the parameters the
    user passed, as typed; we add only the ones it lacks, because MLflow refuses to change a
    logged value and "5e-5" vs "5e-05" would count as a change. `upstream` maps an input's
    name to the URI it came from, recorded as `input.<name>` tags for lineage.

    With `system_metrics`, MLflow's own monitor logs CPU, memory, disk and network use (and
    GPU utilisation and memory where nvidia-ml-py finds a GPU) as `system/*` metrics while the
    step runs, every `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` seconds (5 unless set).
    """
    if system_metrics and not os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
        # MLflow's default of 10 s leaves a default training run (~25-90 s here) few points
        os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "5"
    # what the step loaded before its run (libraries, a model) lives as long as the step
    with long_lived(), mlflow.start_run(log_system_metrics=system_metrics) as run, fail_fast():
        mlflow.set_tags({"step": step, **process_tags()})
        name_run(step)
        logged = mlflow.get_run(run.info.run_id).data.params
        missing = {k: v for k, v in params.items() if k not in logged}
        if missing:
            mlflow.log_params(missing)
        for name, uri in (upstream or {}).items():
            mlflow.set_tag(f"input.{name}", uri)
            if uri.startswith("runs:/"):  # searchable lineage: which run produced this input
                mlflow.set_tag(f"input.{name}.run_id", uri[len("runs:/"):].split("/")[0])
        log_lineage()
        yield run
        mlflow.log_metric("peak_rss_mb", peak_rss_mb())
        gpu = peak_gpu_mb()
        if gpu is not None:
            mlflow.log_metric("peak_gpu_mb", gpu)


def generated_name(name: str) -> bool:
    """Whether `name` is one MLflow drew at random ("welcoming-trout-740"), not one a user
    gave with `--run-name`: such names are a predicate, a noun and a number from MLflow's own
    word lists."""
    parts = name.split("-")
    if len(parts) != 3 or not parts[2].isdigit():
        return False
    try:  # private lists of MLflow's: imported here, guarded, in case they move
        from mlflow.utils.name_utils import _GENERATOR_NOUNS, _GENERATOR_PREDICATES
    except ImportError:  # the lists moved: fall back to the shape alone
        return parts[0].isalpha() and parts[1].isalpha()
    return parts[0] in _GENERATOR_PREDICATES and parts[1] in _GENERATOR_NOUNS


def name_run(name: str) -> None:
    """Name the active run `name`, unless the user named it (`mlflow run --run-name`)."""
    run = mlflow.active_run()
    current = mlflow.get_run(run.info.run_id).info.run_name
    if not current or generated_name(current):
        mlflow.set_tag("mlflow.runName", name)


def peak_gpu_mb() -> float | None:
    """Peak GPU memory torch allocated in this process, in MB; None if it used no GPU."""

    torch = sys.modules.get("torch")  # a step that never imported torch used no GPU
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def log_lineage() -> None:
    """Git commit and dirtiness (with the diff if dirty), Python and package versions."""
    env = environment()
    mlflow.set_tag("python_version", env["python"])
    mlflow.log_dict(env, "lineage/environment.json")
    git = git_state()
    if git is not None:
        mlflow.set_tags({"git.commit": git["commit"], "git.dirty": git["dirty"]})
        if git["diff"]:
            mlflow.log_text(git["diff"], "lineage/git.diff")


def fetch(uri: str, what: str, produced_by: str) -> Path:
    """Local path of an input given as an MLflow artifact URI (`runs:/...`) or a local path.

    A wrong URI is the commonest mistake when running a step alone, so it gets a message
    that says which step's artifact is expected.
    """
    if os.path.exists(uri):
        return Path(uri)
    if "://" not in uri and ":/" not in uri:
        raise UserError(f"{what} '{uri}' is neither a local path nor an MLflow artifact URI: "
                        f"pass runs:/<run id of {produced_by}>/{what}")
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as err:  # MLflow raises several types for a bad run id or path
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot fetch {what} from '{uri}' ({first[:160]}): pass "
                        f"runs:/<run id of a finished {produced_by} run>/{what}") from None


def log_dataframe(df, artifact_path: str) -> None:
    """Log a DataFrame as a Parquet artifact at exactly `artifact_path`, in row groups of
    `ROW_GROUP` rows: a reader then holds one group at a time, not the whole file."""

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(artifact_path).name
        df.to_parquet(local, index=False, row_group_size=ROW_GROUP)
        parent = str(Path(artifact_path).parent)
        mlflow.log_artifact(str(local), artifact_path=None if parent == "." else parent)


ROW_GROUP = 50_000


@contextlib.contextmanager
def without_dataset_advisories() -> Iterator[None]:
    """Around building and logging an `mlflow.data` dataset: without the two advisories MLflow
    gives every split of ours. Its local-file source is registered under two schemes ("" and
    "file"), so any local path "can be interpreted in multiple ways" (by the same class twice);
    and the labels column is an integer one, which its schema inference warns cannot hold
    missing values (labels never miss)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column")
        yield


def log_figure(fig, artifact_path: str) -> None:
    """Log a matplotlib Figure and free it (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(fig, artifact_path)
    plt.close(fig)


def logged_table(run_id: str, artifact_file: str):
    """A table logged with `mlflow.log_table` by one run, as a DataFrame.

    `mlflow.load_table` searches only the active experiment; reading the run's artifact
    directly works wherever the run lives.
    """
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_file)
    with open(path, encoding="utf-8") as fh:
        table = json.load(fh)
    return pd.DataFrame(table["data"], columns=table["columns"])
