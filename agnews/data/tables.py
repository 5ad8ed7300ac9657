"""Reading a table of texts from a file: the one reader of every entry point that takes files
(ingest's local data, predict's input, monitor's batches).

Accepted: a CSV with a header naming its columns (`text`, maybe `label` and more), a CSV in
AG News's own layout (no header; class 1-4, title, description), or a Parquet file. CSV files
are read as UTF-8 with or without a byte-order mark and with either line ending, as
spreadsheet programs save them; a file in another encoding stops with one line naming the
first line that is not UTF-8 and how to convert it.
"""
from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from agnews.config import LABELS
from agnews.errors import UserError

LAYOUTS = "the AG News layout (class, title, description) or `text`,`label` columns"


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
    # pandas' string dtype (Arrow-backed): a NumPy array of Python str objects would take
    # several times the memory of the texts themselves
    out = pd.DataFrame({"text": text.astype(str).reset_index(drop=True)})
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


def not_utf8(path: Path) -> UserError:
    """The error for a CSV in another encoding, naming its first line that is not UTF-8."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                where = f"line {number} has byte 0x{line[err.start]:02x}"
                break
        else:
            where = "it has a byte sequence that is not UTF-8"
    return UserError(f"{path} is not UTF-8 text ({where}; Latin-1 or Windows-1252, as older "
                     "spreadsheet programs save CSV?): save it as \"CSV UTF-8\", or convert it, "
                     f"e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}-utf8.csv")


def _csv_header(path: Path) -> list[str]:
    """The first row's fields; a header is a first row whose first field is not a class index
    (AG News has no header)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = next(csv.reader(fh), None)
    if first is None:
        raise UserError(f"{path} is empty: pass a CSV with rows")
    return first


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    # pyarrow's reader builds Arrow strings directly: pandas' C reader made a Python object of
    # every field first, and the memory of a million rows' objects stayed with the process.
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    try:
        first = _csv_header(path)
        header = not first[0].strip().isdigit()
        names = first if header else [str(i) for i in range(len(first))]
        table = pa_csv.read_csv(
            path, read_options=pa_csv.ReadOptions(column_names=None if header else names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (pa.ArrowInvalid, csv.Error) as err:
        if "utf8" in str(err).lower():
            raise not_utf8(path) from None
        raise UserError(f"{path} is not a readable CSV ({str(err).splitlines()[0][:160]}): "
                        f"pass {LAYOUTS}") from None
    raw = table.to_pandas()
    if header:
        return raw, False
    if raw.shape[1] != 3:
        raise UserError(f"{path} has {raw.shape[1]} columns and no `text`,`label` header: "
                        "expected the AG News layout (class 1-4, title, description)")
    text = (raw["1"].str.strip() + " " + raw["2"].str.strip()).str.strip()
    return pd.DataFrame({"text": text, "label": raw["0"]}), True


def read_rows(path: Path) -> tuple[pd.DataFrame, bool]:
    """A file's rows as they are, and whether its labels are AG News's 1-4: a header CSV or
    Parquet keeps every column; the AG News layout becomes `text` (title + description) and
    `label`. Not validated: `read_table` does that, and monitor reads extra columns."""
    if path.suffix == ".csv":
        return _read_csv(path)
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path), False
        except (OSError, ValueError) as err:
            raise UserError(f"{path} is not a readable Parquet file ({str(err)[:120]})") from None
    raise UserError(f"{path} is neither .csv nor .parquet: pass a CSV or Parquet file or folder")


def rows_digest(chunks: Iterable[pd.DataFrame]) -> str:
    """A digest of the rows' `text` and `label`, chunk by chunk: the same rows give the same
    digest read whole (ingest) or a batch at a time (tokenize). MLflow's own digest hashes
    only a first slice, so it differs between the two."""
    digest = hashlib.md5()
    for chunk in chunks:
        digest.update(pd.util.hash_pandas_object(
            chunk[["text", "label"]].astype({"label": "int64"}), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:8]


def release_arrow_memory() -> None:
    """Hand back what Arrow's allocator keeps of freed arrays: after the intermediate columns
    of reading a million rows, that was twice the data itself."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def read_table(path: Path, need_label: bool = True) -> pd.DataFrame:
    """A validated `text`/`label` table from a CSV or Parquet file; `need_label=False` for
    texts to score."""
    frame, one_based = read_rows(path)
    release_arrow_memory()  # the columns the reader joined into `text`
    table = validate(frame, path.name, one_based=one_based, need_label=need_label)
    del frame
    release_arrow_memory()
    return table
