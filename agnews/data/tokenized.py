"""Token ids for the splits: encoded with the model's tokenizer onto Arrow files on disk, and
read back memory-mapped, so a split of millions of texts costs the pages its batches touch,
not its size.

tokenize writes `tokenized/<split>/` (a `datasets` folder, `save_to_disk`) with columns
`input_ids` (int32 lists: unpadded, truncated to `max_length`), `label` and `tokens` (the
length before truncation), and `tokenized/meta.json`; train reads them with `read_tokenized`
as `TokenRows`. Runs of earlier versions wrote `tokenized/<split>.parquet`, still read.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from agnews.config import SPLITS

# Deferred import: datasets (half a second), where splits are encoded or read from disk.

ENCODE_BATCH = 1000  # texts per call of the tokenizer, and per Arrow record batch written
# Below this many texts per process, starting a process costs more than it saves (the
# steps turn the tokenizers library's own threads off): docs/performance.md.
ROWS_PER_PROCESS = 5_000


def encode_processes(asked: int, rows: int) -> int:
    """`asked`, or for 0 one process per `ROWS_PER_PROCESS` texts, up to the usable cores."""
    if asked > 0:
        return asked
    return max(1, min(len(os.sched_getaffinity(0)), rows // ROWS_PER_PROCESS))


def token_lengths(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text with special tokens and no truncation: what the text really needs."""
    encoded = tokenizer(texts, truncation=False, add_special_tokens=True)["input_ids"]
    return np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(texts))


def encode(tokenizer, df: pd.DataFrame, max_length: int) -> pd.DataFrame:
    """`input_ids` truncated to `max_length` (no padding: train pads per batch) and `label`."""
    ids = tokenizer(df["text"].tolist(), truncation=True, max_length=max_length)["input_ids"]
    return pd.DataFrame({"input_ids": ids, "label": df["label"].to_numpy()})


def encoder(tokenizer, max_length: int):
    """The batched function `datasets.Dataset.map` calls: a batch of texts to its columns.
    `tokenizers`' own tokenizer (FastTokenizer) gives the ids and the untruncated lengths in
    one pass; transformers' tokenizers take two."""
    def encode_batch(batch: dict[str, list]) -> dict[str, list]:
        if hasattr(tokenizer, "ids_and_lengths"):
            ids, tokens = tokenizer.ids_and_lengths(batch["text"], max_length)
            return {"input_ids": ids, "tokens": tokens}
        return {"input_ids": tokenizer(batch["text"], truncation=True,
                                       max_length=max_length)["input_ids"],
                "tokens": token_lengths(tokenizer, batch["text"]).tolist()}
    return encode_batch


def read_texts(parquet: Path, work: Path):
    """A `text` / `label` Parquet file as a `datasets.Dataset`, converted once to an Arrow
    file under `work` and memory-mapped from there."""
    import datasets

    return datasets.Dataset.from_parquet(str(parquet), cache_dir=str(work / "cache"))


def encode_split(texts, out: Path, tokenizer, max_length: int, work: Path, num_proc: int = 1):
    """Encode `texts` (`read_texts`) into the `datasets` folder `out` a batch at a time, so
    memory stays flat whatever the rows; `work` holds the intermediate Arrow file. Returns the
    encoded `datasets.Dataset`, memory-mapped from `out`."""
    import datasets

    features = datasets.Features({"label": texts.features["label"],
                                  "input_ids": datasets.List(datasets.Value("int32")),
                                  "tokens": datasets.Value("int32")})
    encoded = texts.map(encoder(tokenizer, max_length), batched=True, batch_size=ENCODE_BATCH,
                        writer_batch_size=ENCODE_BATCH, remove_columns=["text"],
                        features=features, num_proc=num_proc if num_proc > 1 else None,
                        cache_file_name=str(work / f"{out.name}.arrow"),
                        # named, not hashed: datasets would hash the tokenizer, for seconds
                        # (`work` is this run's own folder, so the name cannot collide)
                        new_fingerprint=f"tokenize-{out.name}-{max_length}",
                        desc=f"tokenize {out.name}")
    encoded.save_to_disk(str(out))
    return datasets.load_from_disk(str(out))


def length_summary(lengths: np.ndarray, max_length: int) -> dict[str, float]:
    return {"truncated_share": float((lengths > max_length).mean()),
            "tokens_mean": float(lengths.mean()),
            "tokens_p95": float(np.percentile(lengths, 95))}


class TokenRows(Sequence):
    """The rows of one tokenized split: labels and lengths as arrays, token ids fetched a batch
    at a time (`take`) from an Arrow table, memory-mapped when read from disk."""

    def __init__(self, table: pa.Table):
        self.table = table
        ids = table.column("input_ids")
        self.labels = table.column("label").to_numpy().astype(np.int64)
        self.lengths = pc.list_value_length(ids).to_numpy().astype(np.int64)
        # Rows are found chunk by chunk, by hand: Arrow's take on a chunked list column first
        # joins every chunk into one array, a copy of the whole split (and a read of all of it).
        self._chunks = ids.chunks
        self._starts = np.cumsum([0] + [len(c) for c in self._chunks])

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> TokenRows:
        """Rows held in memory, from a frame with `input_ids` and `label` (as `encode` gives)."""
        return cls(pa.table({"input_ids": pa.array(list(df["input_ids"]),
                                                   pa.list_(pa.int32())),
                             "label": pa.array(df["label"].to_numpy(), pa.int64())}))

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, row):
        if isinstance(row, slice):
            return self.take(np.arange(len(self))[row])
        return self.take([row])[0]

    def take(self, rows: Sequence[int]) -> list[list[int]]:
        """The token ids of `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0-{len(self) - 1}")
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        out: list = [None] * len(rows)
        for c in np.unique(chunk):
            where = np.flatnonzero(chunk == c)
            found = self._chunks[c].take(pa.array(rows[where] - self._starts[c])).to_pylist()
            for i, ids in zip(where, found, strict=True):
                out[i] = ids
        return out

    def subset(self, rows: Sequence[int]) -> TokenRows:
        """The rows `rows`, in that order, held in memory."""
        rows = np.asarray(rows, dtype=np.int64)
        return TokenRows(pa.table({"input_ids": pa.array(self.take(rows), pa.list_(pa.int32())),
                                   "label": pa.array(self.labels[rows], pa.int64())}))


def as_token_rows(rows: TokenRows | pd.DataFrame) -> TokenRows:
    """`TokenRows` as they are, or a frame of `input_ids` and `label` in memory."""
    return rows if isinstance(rows, TokenRows) else TokenRows.from_frame(rows)


def read_tokenized(folder: Path) -> tuple[dict[str, TokenRows], dict]:
    """The tokenized splits (memory-mapped) and their meta, as tokenize writes them."""
    meta = json.loads((folder / "meta.json").read_text())
    splits = {}
    for split in SPLITS:
        if (folder / f"{split}.parquet").is_file():  # a tokenize run of an earlier version
            splits[split] = TokenRows.from_frame(pd.read_parquet(folder / f"{split}.parquet"))
            continue
        import datasets

        splits[split] = TokenRows(datasets.load_from_disk(str(folder / split)).data.table)
    return splits, meta
