"""What the sampled data looks like: class balance, text lengths, train/test overlap."""
from __future__ import annotations

import pandas as pd

from agnews.config import LABELS


def class_balance(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per split and class: rows and share of the split."""
    rows = []
    for split, df in splits.items():
        counts = df["label"].value_counts().reindex(range(len(LABELS)), fill_value=0)
        for label, n in counts.items():
            rows.append({"split": split, "label": label, "class": LABELS[label], "rows": int(n),
                         "share": round(n / max(len(df), 1), 4)})
    return pd.DataFrame(rows)


def word_counts(texts: pd.Series) -> pd.Series:
    """Words per text: runs of non-space characters, counted without building word lists
    (`str.split` would hold every word of every text at once)."""
    return texts.str.count(r"\S+")


def text_length(splits: dict[str, pd.DataFrame],
                words: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """Words and characters per text, per split: mean, median, 95th percentile, max. `words`:
    the splits' `word_counts`, where the caller has them."""
    rows = []
    for split, df in splits.items():
        counts = words[split] if words is not None else word_counts(df["text"])
        for unit, lengths in (("words", counts),
                              ("chars", df["text"].str.len())):
            rows.append({"split": split, "unit": unit, "mean": round(float(lengths.mean()), 2),
                         "median": float(lengths.median()),
                         "p95": float(lengths.quantile(0.95)), "max": int(lengths.max())})
    return pd.DataFrame(rows)


def text_overlap(a: pd.DataFrame, b: pd.DataFrame) -> int:
    """How many texts of `a` also occur in `b` (AG News repeats a few stories across splits)."""
    return int(a["text"].isin(set(b["text"])).sum())
