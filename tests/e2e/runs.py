"""What the end-to-end tests share, as plain helpers: a tracking store of their own, the one
`mlflow run` command line, an entry point run in the test's own process, and a finished
`main` (a pipeline) read back from its store."""
from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from support import ROOT, subprocess_env

from agnews import cli
from agnews.tracking.inline import run_inline
from agnews.tracking.step_cache import STEPS

CHAMPION = "models:/agnews-classifier@champion"
EPOCH_METRICS = [f"{split}_{m}" for split in ("train", "val")
                 for m in ("loss", "accuracy", "f1", "precision", "recall")]

# What each step of main writes into its run, whatever the data (the model itself is an MLflow
# LoggedModel of train's, checked by evaluate loading it)
STEP_ARTIFACTS = {
    "ingest": ["data/train.parquet", "data/val.parquet", "data/test.parquet",
               "class_balance.json", "text_length.json", "plots/class_balance.png",
               "plots/text_length_words.png"],
    "tokenize": ["tokenized/meta.json", *(f"tokenized/{split}/{name}" for split in
                                          ("train", "val", "test") for name in
                                          ("state.json", "data-00000-of-00001.arrow")),
                 "tokenizer/tokenizer.json", "plots/text_length_tokens.png"],
    "train": ["plots/loss_curves.png", "plots/metric_evolution.png", "plots/learning_rate.png"],
    "evaluate": ["predictions.parquet", "per_class_metrics.json", "plots/confusion_matrix.png",
                 "plots/roc_pr_curves.png", "plots/reliability_diagram.png"],
    "register": ["model_card/README.md"],
    "report": ["report/report.md", "report/report.html", "report/img/loss_curves.png"],
}


@dataclass
class Store:
    """A sqlite tracking store of its own and one experiment in it."""

    uri: str
    experiment_id: str
    client: MlflowClient = field(repr=False)

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """This store as the tracking store of the test process while the block runs; the
        one set before is set again after (MLflow's own test helper: blocks may nest)."""
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        with _use_tracking_uri(self.uri):
            yield

    def runs(self, filter_string: str = "") -> list:
        return self.client.search_runs([self.experiment_id], filter_string,
                                       order_by=["attributes.start_time DESC"])

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that logs here."""
        return {**subprocess_env(), "MLFLOW_TRACKING_URI": self.uri, **extra}


def make_store(folder: Path, name: str = "e2e") -> Store:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(name, artifact_location=str(folder / "artifacts"))
    return Store(uri, experiment_id, client)


def mlflow_run_args(entry_point: str, params: dict, project: Path | str = ROOT,
                    experiment_id: str | None = None) -> list[str]:
    """`python -m mlflow run <project> -e <entry point> --env-manager local -P k=v ...`"""
    args = [sys.executable, "-m", "mlflow", "run", str(project), "-e", entry_point,
            "--env-manager", "local"]
    if experiment_id is not None:
        args += ["--experiment-id", experiment_id]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    return args


def mlflow_run(entry_point: str, params: dict, store: Store, project: Path | str = ROOT,
               check: bool = True, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    """Run an entry point as a user does, logging to `store`; with `check`, it must succeed."""
    proc = subprocess.run(mlflow_run_args(entry_point, params, project, store.experiment_id),
                          cwd=project, env=store.env(**env), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def run_here(entry_point: str, params: dict, store: Store,
             project: Path | str = ROOT) -> SimpleNamespace:
    """An entry point run in this process, as `main` runs its steps with AGNEWS_INLINE_STEPS
    (agnews.tracking.inline): its MLproject command, in a run created as `mlflow run` creates
    one. Its exit code, stdout, stderr and run id; the imports are paid once per test process."""
    from mlflow.utils.mlflow_tags import (
        MLFLOW_PROJECT_ENTRY_POINT,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
    )

    out, err = io.StringIO(), io.StringIO()
    with store.tracking(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        run = store.client.create_run(store.experiment_id, tags={
            MLFLOW_PROJECT_ENTRY_POINT: entry_point, MLFLOW_SOURCE_TYPE: "PROJECT",
            MLFLOW_SOURCE_NAME: str(project)})
        code = run_inline(Path(project), entry_point, {k: str(v) for k, v in params.items()},
                          run.info.run_id)
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue(),
                           run_id=run.info.run_id)


def newest_main(store: Store, before: set[str]):
    """The parent run and its step runs (children, or the cached runs it reused) of the
    newest `main` started after the runs in `before`."""
    new = [r for r in store.runs() if r.info.run_id not in before]
    parent = next(r for r in new if "step.ingest.run_id" in r.data.tags)
    steps = {s: store.client.get_run(parent.data.tags[f"step.{s}.run_id"]) for s in STEPS}
    return parent, steps


@dataclass
class Pipeline:
    """A finished `main`: its store, the project folder it ran from, its parameters, the
    parent and the step runs, and what it printed (stdout, stderr)."""

    store: Store
    project: Path
    params: dict
    parent: object
    children: dict
    stdout: str
    stderr: str = ""
    champion_uri: str = CHAMPION

    def tracking(self):
        return self.store.tracking()


def artifact_paths(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def command_line(module: str, args: list[str], capsys) -> SimpleNamespace:
    """A step's command line called in this process (`agnews.cli.run_step` over the step's
    `main`, which is what `python -m steps.<module>` runs), expected to stop with an error:
    its exit code, stdout and stderr."""
    main = importlib.import_module(f"steps.{module}").main
    with pytest.raises(SystemExit) as exited:
        cli.run_step(module, main, args)
    out = capsys.readouterr()
    return SimpleNamespace(returncode=exited.value.code, stdout=out.out, stderr=out.err)
