"""Stratified, seeded, disjoint train / validation / test samples of a data source."""
from __future__ import annotations

import numpy as np
import pandas as pd

from agnews.config import LABELS, SPLITS, DataConfig
from agnews.data.sources import Source
from agnews.data.tables import release_arrow_memory
from agnews.errors import UserError


def allocate(counts: pd.Series, n: int) -> pd.Series:
    """Rows per class for a sample of `n`, proportional to `counts` (largest remainder).

    Largest remainder keeps the total exactly `n` and every class within one row of its
    exact share, which plain rounding does not.
    """
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    short = n - int(quota.sum())
    order = (exact - quota).sort_values(ascending=False, kind="stable").index
    quota[order[:short]] += 1
    return quota


def _requested(size: int, available: int) -> int:
    """0 or more than exists means all rows."""
    return available if size == 0 or size > available else size


def _shuffled_by_class(pool: pd.DataFrame, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Row positions of each class, in one seeded shuffle of the pool. Positions, not frames:
    copies of the rows per class would hold the data several times over."""
    order = rng.permutation(len(pool))
    labels = pool["label"].to_numpy()[order]
    return {int(k): order[labels == k] for k in np.unique(labels)}


def _take(by_class: dict[int, np.ndarray], quota: pd.Series, offset: dict[int, int],
          split: str, source_name: str, sizes: str) -> np.ndarray:
    parts = []
    for label, n in quota.items():
        rows = by_class[label]
        start = offset[label]
        if start + n > len(rows):
            raise UserError(f"class {LABELS[label]} has {len(rows)} rows in the {source_name} "
                            f"split but {sizes} need {start + n}: lower the sizes or add data")
        parts.append(rows[start:start + n])
        offset[label] = start + n
    return np.concatenate(parts)


def sample_splits(source: Source, cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """Stratified, seeded, disjoint train / val / test samples.

    Validation comes from the train pool and never overlaps train; test comes from the test
    pool, or, for a single-file source, from the same pool before train and val are drawn.
    Each class keeps its share of the pool in every split.
    """
    rng = np.random.default_rng(cfg.seed)
    pool = _shuffled_by_class(source.train, rng)
    counts = pd.Series({k: len(g) for k, g in pool.items()})
    offset = {k: 0 for k in pool}
    rows: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    if source.test is None:
        n_test = _requested(cfg.test_size, int(counts.sum()))
        rows["test"] = (source.train, _take(pool, allocate(counts, n_test), offset, "test",
                                            "data", f"test_size={cfg.test_size}"))
        counts = counts - pd.Series(offset)
    else:
        test_pool = _shuffled_by_class(source.test, rng)
        test_counts = pd.Series({k: len(g) for k, g in test_pool.items()})
        n_test = _requested(cfg.test_size, int(test_counts.sum()))
        rows["test"] = (source.test, _take(test_pool, allocate(test_counts, n_test),
                                           {k: 0 for k in test_pool}, "test", "test",
                                           f"test_size={cfg.test_size}"))
    available = int(counts.sum())
    n_val = _requested(cfg.val_size, available)
    if n_val >= available:
        raise UserError(f"val_size={cfg.val_size} takes all {available} train-split rows and "
                        "leaves none to train on: pass a smaller positive val_size")
    sizes = f"train_size={cfg.train_size} and val_size={cfg.val_size}"
    val_quota = allocate(counts, n_val)
    rows["val"] = (source.train, _take(pool, val_quota, offset, "val", "train", sizes))
    if cfg.train_size == 0 or cfg.train_size > available:
        quota = counts - val_quota  # "all rows": everything validation did not take
    else:
        if cfg.train_size + n_val > available:
            raise UserError(f"the train split has {available} rows but {sizes} need "
                            f"{cfg.train_size + n_val}: lower train_size or val_size")
        quota = allocate(counts, cfg.train_size)
    rows["train"] = (source.train, _take(pool, quota, offset, "train", "train", sizes))
    out = {}
    for name in SPLITS:
        frame, positions = rows[name]
        # Interleave classes so a file read top to bottom is not sorted by label: the order
        # `sample(frac=1, random_state=seed)` gives, in the same copy as the selection.
        shuffle = np.random.RandomState(cfg.seed).permutation(len(positions))
        out[name] = frame.iloc[positions[shuffle]].reset_index(drop=True)
        release_arrow_memory()
    return out
