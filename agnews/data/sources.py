"""Loading AG News (or any 4-class text data) from the Hub or from local files, validated.

Every loader returns DataFrames with exactly two columns, `text` (str) and `label` (int 0-3).
The accepted sources, in the order `load_source` tries them:

- an existing local folder holding `train.csv` + `test.csv` (AG News layout: no header,
  class 1-4, title, description; or a header with `text` and `label`), or `train.parquet` +
  `test.parquet` with `text` and `label` columns;
- an existing local CSV/Parquet file with `text` and `label`: test rows are then carved from
  the same file (see `ingest.sample_splits`);
- otherwise a Hugging Face dataset id, pinned to a commit (`agnews.hub.resolve`: the Hub if
  it answers, else the local cache) and loaded with `datasets.load_dataset`.

Files are read by `agnews.data.tables.read_table`, the reader every entry point shares.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agnews.config import LABELS
from agnews.data.tables import read_table, validate
from agnews.errors import UserError
from agnews.hub import Revision, is_hub_id, resolve

# Deferred imports: datasets and mlflow's Hugging Face source, only for a Hub data set.


@dataclass
class Source:
    """The loaded pools. `test` is None when a single file holds every row."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    uri: str  # where the rows came from: a resolved local path, or hf://datasets/<id>@<commit>
    revision: Revision | None = None  # the pinned Hub commit; None for local files


def load_local(path: Path) -> Source:
    if path.is_file():
        return Source(read_table(path), None, str(path.resolve()))
    for ext in ("csv", "parquet"):
        train, test = path / f"train.{ext}", path / f"test.{ext}"
        if train.is_file() and test.is_file():
            return Source(read_table(train), read_table(test), str(path.resolve()))
    raise UserError(f"folder {path} has no train.csv + test.csv (nor train.parquet + "
                    "test.parquet): pass a folder in the AG News layout or a single data file")


def check_label_names(features, name: str) -> None:
    """A `ClassLabel` must name the four AG News classes in their order (labels are indices)."""
    names = getattr(features.get("label"), "names", None)
    if names is not None and [n.lower() for n in names] != [n.lower() for n in LABELS]:
        raise UserError(f"{name} labels are {names}, not {list(LABELS)} in that order: pass a "
                        "data set with the AG News classes")


def load_hub(dataset_id: str, revision: str = "main") -> Source:
    pinned = resolve(dataset_id, "dataset", revision)
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, revision=pinned.sha)
    except Exception as err:  # the Hub raises many types for a missing or private dataset
        raise UserError(f"cannot load dataset '{dataset_id}' at revision {pinned.sha[:12]} "
                        f"({str(err).splitlines()[0][:160]}): check the id or pass a local folder"
                        ) from None
    if "train" not in ds or "test" not in ds:
        raise UserError(f"dataset '{dataset_id}' has splits {list(ds)}, not train and test")
    check_label_names(ds["train"].features, f"dataset '{dataset_id}'")
    return Source(validate(ds["train"].to_pandas(), f"{dataset_id}[train]"),
                  validate(ds["test"].to_pandas(), f"{dataset_id}[test]"),
                  f"hf://datasets/{dataset_id}@{pinned.sha}", pinned)


def load_source(data: str, revision: str = "main") -> Source:
    path = Path(data).expanduser()
    if path.exists():
        return load_local(path)
    if not is_hub_id(data):
        raise UserError(f"data path '{data}' does not exist: pass an existing folder or file "
                        "(paths are relative to the project folder) or a Hub dataset id")
    return load_hub(data, revision)


def source_tags(source: Source) -> dict[str, str]:
    if source.revision is None:
        return {"data.source": "file" if source.test is None else "folder"}
    return {"data.source": "hub" if source.revision.online else "cache",
            "data.revision": source.revision.sha}


def dataset_source(source: Source, split: str):
    """What `mlflow.log_input` records as the rows' origin: the local path, or the Hub data
    set at its commit (MLflow resolves no `hf://` string, but loads this source back with
    `datasets.load_dataset`). Validation rows come from the train split."""
    if source.revision is None:
        return source.uri
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    return HuggingFaceDatasetSource(path=source.revision.repo_id,
                                    split="test" if split == "test" else "train",
                                    revision=source.revision.sha)
