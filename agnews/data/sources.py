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

CSV files are read as UTF-8 with or without a byte-order mark and with either line ending,
as spreadsheet programs save them.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agnews.config import LABELS
from agnews.errors import UserError
from agnews.hub import Revision, is_hub_id, resolve


@dataclass
class Source:
    """The loaded pools. `test` is None when a single file holds every row."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    uri: str  # where the rows came from: a resolved local path, or hf://datasets/<id>@<commit>
    revision: Revision | None = None  # the pinned Hub commit; None for local files


def validate(df: pd.DataFrame, name: str, one_based: bool = False,
             need_label: bool = True) -> pd.DataFrame:
    """Check columns, labels and texts; return `text`/`label` with labels 0-3.

    `one_based` is the AG News CSV layout, whose class index runs 1-4. With
    `need_label=False` (texts to score) a missing `label` column is fine; one that is
    present is still checked and kept. Row numbers in errors count data rows from 1.
    """
    required = ("text", "label") if need_label else ("text",)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{name} lacks column(s) {', '.join(missing)} (has: "
                        f"{', '.join(map(str, df.columns))}): provide "
                        + ("`text` and `label` columns" if need_label else "a `text` column"))
    if df.empty:
        raise UserError(f"{name} has no rows: pass a file with data")
    text = df["text"].astype("string")
    empty = text.isna() | (text.str.strip() == "")
    if empty.any():
        rows = ", ".join(str(r + 1) for r in empty.to_numpy().nonzero()[0][:5])
        raise UserError(f"{name} has {int(empty.sum())} empty text(s), at row(s) {rows}"
                        f"{' ...' if empty.sum() > 5 else ''}: remove or fill them")
    out = pd.DataFrame({"text": text.astype(str).to_numpy()})
    if "label" in df.columns:
        labels = pd.to_numeric(df["label"], errors="coerce")
        low, high = (1, 4) if one_based else (0, len(LABELS) - 1)
        bad = labels.isna() | (labels != labels.round()) | (labels < low) | (labels > high)
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise UserError(f"{name} row {row + 1} has label {df['label'].iloc[row]!r}, outside "
                            f"{low}-{high}: labels must be integers {low}-{high} "
                            f"({', '.join(LABELS)})")
        out["label"] = (labels - low).astype("int64").to_numpy()
    return out


def _csv_has_header(path: Path) -> bool:
    """A header row is one whose first field is not a class index (AG News has no header)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = next(csv.reader(fh), None)
    if first is None:
        raise UserError(f"{path} is empty: pass a CSV with rows")
    return not first[0].strip().isdigit()


def read_csv(path: Path, need_label: bool = True) -> pd.DataFrame:
    """A CSV with a header holding `text` (and `label`), or the AG News layout (class, title,
    description; no header)."""
    try:
        if _csv_has_header(path):
            return validate(pd.read_csv(path, dtype=str, keep_default_na=False,
                                        encoding="utf-8-sig"), path.name, need_label=need_label)
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False,
                          encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} is not a readable CSV ({str(err).splitlines()[0]}): pass the "
                        "AG News layout (class, title, description) or `text`,`label` columns"
                        ) from None
    if raw.shape[1] != 3:
        raise UserError(f"{path} has {raw.shape[1]} columns and no `text`,`label` header: "
                        "expected the AG News layout (class 1-4, title, description)")
    text = (raw[1].str.strip() + " " + raw[2].str.strip()).str.strip()
    return validate(pd.DataFrame({"text": text, "label": raw[0]}), path.name, one_based=True)


def read_table(path: Path, need_label: bool = True) -> pd.DataFrame:
    """A validated CSV or Parquet file; `need_label=False` for texts to score."""
    if path.suffix == ".csv":
        return read_csv(path, need_label)
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{path} is not a readable Parquet file ({str(err)[:120]})") from None
        return validate(frame, path.name, need_label=need_label)
    raise UserError(f"{path} is neither .csv nor .parquet: pass a CSV or Parquet file or folder")


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
