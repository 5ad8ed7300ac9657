"""tokenize's Arrow files: encoded a batch at a time (in one process or several), read back
memory-mapped as `TokenRows`, and the digest ingest and tokenize give the same rows."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from agnews.data.tables import rows_digest
from agnews.data.tokenized import (
    TokenRows,
    encode,
    encode_processes,
    encode_split,
    read_texts,
    read_tokenized,
    token_lengths,
)
from agnews.model.fast_tokenizer import FastTokenizer
from agnews.model.pretrained import load_tokenizer


@pytest.fixture(scope="module", params=["transformers", "tokenizers"])
def tokenizer(tiny_model, request):
    """transformers' tokenizer, and `tokenizers`' own (what tokenize uses for BERT models),
    which encodes the ids and the untruncated lengths in one pass."""
    if request.param == "tokenizers":
        return FastTokenizer.from_folder(tiny_model)
    return load_tokenizer(str(tiny_model))


def frame(rows: int) -> pd.DataFrame:
    """Texts of varied length (some past max_length) and every label."""
    return pd.DataFrame({"text": [f"story {i} " + "word " * (i % 40) for i in range(rows)],
                         "label": np.arange(rows) % 4})


@pytest.fixture(scope="module")
def written(tokenizer, tmp_path_factory):
    """2,500 texts encoded in one process and in two, as tokenize writes them."""
    root = tmp_path_factory.mktemp("tokenized")
    df = frame(2500)
    df.to_parquet(root / "test.parquet", index=False)
    out = {}
    for processes in (1, 2):
        folder = root / f"out{processes}"
        texts = read_texts(root / "test.parquet", root / f"work{processes}")
        encode_split(texts, folder / "test", tokenizer, 16, root / f"work{processes}", processes)
        out[processes] = folder
    return df, out


def test_encoded_rows_are_what_the_tokenizer_gives_in_one_process_or_several(tokenizer, written):
    df, folders = written
    expected = encode(tokenizer, df, 16)
    for folder in folders.values():
        rows = TokenRows(read_disk(folder / "test"))
        assert len(rows) == len(df)
        assert rows.take(np.arange(len(df))) == [list(i) for i in expected["input_ids"]]
        assert rows.labels.tolist() == df["label"].tolist()
        assert rows.lengths.tolist() == [len(i) for i in expected["input_ids"]]
        assert rows.table.column("tokens").to_pylist() == token_lengths(
            tokenizer, df["text"].tolist()).tolist()  # before truncation: what the plot shows


def read_disk(folder):
    import datasets

    return datasets.load_from_disk(str(folder)).data.table


def test_read_tokenized_maps_the_files_instead_of_loading_them(written, tmp_path):
    _, folders = written
    folder = folders[1]
    for split in ("train", "val"):  # the same rows under every split's name
        os.symlink(folder / "test", folder / split)
    (folder / "meta.json").write_text(json.dumps({"max_length": 16}))
    before = pa.total_allocated_bytes()
    splits, meta = read_tokenized(folder)
    ids_bytes = splits["test"].table.column("input_ids").nbytes
    # the token ids stay in the mapped files; only the lengths (4 bytes a row) are computed
    assert pa.total_allocated_bytes() - before < 0.25 * 3 * ids_bytes
    assert meta == {"max_length": 16} and set(splits) == {"train", "val", "test"}
    rows = splits["test"]
    assert rows.take([2, 0]) == [rows[2], rows[0]]
    part = rows.subset([3, 1])
    assert part.take([0, 1]) == [rows[3], rows[1]]
    assert part.labels.tolist() == [3, 1] and part.lengths.tolist() == [len(rows[3]), len(rows[1])]


def test_a_tokenize_run_of_an_earlier_version_still_reads(tokenizer, tmp_path):
    df = encode(tokenizer, frame(12), 16)
    for split in ("train", "val", "test"):
        df.to_parquet(tmp_path / f"{split}.parquet", index=False)
    (tmp_path / "meta.json").write_text("{}")
    splits, _ = read_tokenized(tmp_path)
    assert splits["val"].take(range(12)) == [list(i) for i in df["input_ids"]]
    assert splits["val"].labels.tolist() == df["label"].tolist()


def test_rows_digest_is_the_same_read_whole_or_in_chunks_and_sees_any_change():
    df = frame(1000)
    whole = rows_digest([df])
    assert rows_digest([df[:300], df[300:]]) == whole
    assert rows_digest([df.astype({"label": "int32"})]) == whole  # as another reader types it
    changed = df.copy()
    changed.loc[500, "label"] = (changed.loc[500, "label"] + 1) % 4
    assert rows_digest([changed]) != whole
    assert rows_digest([df[:999]]) != whole


def test_encode_processes_follows_the_rows_unless_asked():
    cores = len(os.sched_getaffinity(0))
    assert encode_processes(3, 10) == 3
    assert encode_processes(0, 4_999) == 1
    assert encode_processes(0, 10_000) == min(cores, 2)
    assert encode_processes(0, 10**9) == cores
