"""Token ids for the splits: encoding with the model's tokenizer, lengths, and the files
tokenize writes and train reads (`tokenized/<split>.parquet`, `tokenized/meta.json`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from agnews.config import SPLITS


def token_lengths(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text with special tokens and no truncation: what the text really needs."""
    encoded = tokenizer(texts, truncation=False, add_special_tokens=True)["input_ids"]
    return np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(texts))


def encode(tokenizer, df: pd.DataFrame, max_length: int) -> pd.DataFrame:
    """`input_ids` truncated to `max_length` (no padding: train pads per batch) and `label`."""
    ids = tokenizer(df["text"].tolist(), truncation=True, max_length=max_length)["input_ids"]
    return pd.DataFrame({"input_ids": ids, "label": df["label"].to_numpy()})


def length_summary(lengths: np.ndarray, max_length: int) -> dict[str, float]:
    return {"truncated_share": float((lengths > max_length).mean()),
            "tokens_mean": float(lengths.mean()),
            "tokens_p95": float(np.percentile(lengths, 95))}


def read_tokenized(folder: Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """The tokenized splits and their meta, as written by `main` below."""
    meta = json.loads((folder / "meta.json").read_text())
    return {s: pd.read_parquet(folder / f"{s}.parquet") for s in SPLITS}, meta
