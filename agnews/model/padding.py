"""Padding token ids into batches with NumPy alone, for every runtime that scores them.

PyTorch (`agnews.model.batching`) and ONNX Runtime (`agnews.model.runtimes`) pad the same way,
so a text meets the same inputs whichever scores it; kept free of torch so a step that scores
through ONNX Runtime never imports it.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

# Batch widths are rounded up to a multiple of this. Every distinct input shape makes the CPU
# backend (oneDNN) build and cache its own kernels, and those caches plus the allocator's
# fragmentation grew training's memory by ~300 MB over an epoch of free widths; with widths
# in steps of 16 there are at most 8 shapes up to 128 tokens, for ~4% more padding.
PAD_MULTIPLE = 16


def padded_width(longest: int, multiple: int = PAD_MULTIPLE) -> int:
    """The width a batch whose longest sequence has `longest` tokens is padded to."""
    return -(-longest // multiple) * multiple


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int,
            multiple: int = PAD_MULTIPLE) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence, rounded up to `multiple`; (input_ids, attention_mask)
    as int64 arrays."""
    width = padded_width(max(len(s) for s in seqs), multiple)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return ids, mask


def lengths_of(seqs: Sequence[Sequence[int]]) -> np.ndarray:
    """Tokens per sequence: the `lengths` rows read from Arrow carry (`agnews.data.tokenized`),
    else counted."""
    known = getattr(seqs, "lengths", None)
    if known is not None:
        return known
    return np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))


def rows_at(seqs: Sequence[Sequence[int]], idx: np.ndarray) -> list[Sequence[int]]:
    """The sequences at `idx`: rows read from Arrow fetch them in one call (`take`)."""
    take = getattr(seqs, "take", None)
    return take(idx) if take is not None else [seqs[i] for i in idx]


def longest_first(seqs: Sequence[Sequence[int]]) -> np.ndarray:
    """Row order that scores the longest texts first: each batch then holds texts of similar
    length and pads little."""
    return np.argsort(-lengths_of(seqs), kind="stable")


def padded_batches(seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                   order: np.ndarray | None = None, multiple: int = PAD_MULTIPLE
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (row indices, input_ids, attention_mask) in `order` (default: as given)."""
    order = np.arange(len(seqs)) if order is None else order
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ids, mask = pad_ids(rows_at(seqs, idx), pad_id, multiple)
        yield idx, ids, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
