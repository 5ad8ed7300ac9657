"""Batching token ids, and scoring.

Shared by train (batches, scoring) and evaluate (scoring); loading the pretrained model and
tokenizer is `agnews.model.pretrained`. Token ids travel between steps unpadded; `batches` pads each
batch only to its own longest text (dynamic padding), so a batch of 40-token news snippets
does not pay for 128.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from agnews.model.device import autocast

# Batch widths are rounded up to a multiple of this. Every distinct input shape makes the CPU
# backend (oneDNN) build and cache its own kernels, and those caches plus the allocator's
# fragmentation grew training's memory by ~300 MB over an epoch of free widths; with widths
# in steps of 16 there are at most 8 shapes up to 128 tokens, for ~4% more padding.
PAD_MULTIPLE = 16


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int,
              multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence, rounded up to `multiple`; (input_ids, attention_mask)."""
    width = -(-max(len(s) for s in seqs) // multiple) * multiple
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def batches(seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
            order: np.ndarray | None = None, multiple: int = PAD_MULTIPLE
            ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yield (row indices, input_ids, attention_mask) in `order` (default: as given), each
    batch padded to a width that is a multiple of `multiple`."""
    order = np.arange(len(seqs)) if order is None else order
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id, multiple)
        yield idx, ids, mask


def micro_batches(rows: int, width: int, max_tokens: int) -> list[slice]:
    """Row slices of one padded batch, each at most `max_tokens` tokens (at least one row).

    Activation memory grows with rows x width; splitting only the long batches caps the
    peak while short batches (most of AG News) still run whole. Parts are of near-equal size
    (16 rows at most 12 per part: 8 + 8, not 12 + 4), since a tiny last part costs a whole
    forward pass's overhead. 0 = never split.
    """
    most = rows if max_tokens <= 0 else max(1, min(rows, max_tokens // width))
    parts = -(-rows // most)
    step = -(-rows // parts)
    return [slice(start, start + step) for start in range(0, rows, step)]


def length_grouped_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                         group: int = 50) -> np.ndarray:
    """A shuffled order in which each batch holds texts of similar length.

    Shuffle, cut into chunks of `group` batches, sort each chunk by length, then shuffle the
    batches: every epoch still sees a random mix, but a batch pads to little more than its
    own texts (as the Hugging Face Trainer's group_by_length does).
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * group
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        order[start:start + chunk] = part[np.argsort(-lengths[part], kind="stable")]
    cuts = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    # A short last batch stays last, or every batch boundary after it would shift.
    full = len(order) // batch_size
    shuffled = [cuts[i] for i in rng.permutation(full)] + cuts[full:]
    return np.concatenate(shuffled) if shuffled else order


@torch.inference_mode()
def predict_logits(model, seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                   precision: str = "fp32", progress=None, multiple: int = 1) -> np.ndarray:
    """Logits for every sequence, in input order.

    Sequences are scored longest first so each batch holds texts of similar length and
    padding stays minimal; results are scattered back to the input order. `precision` is a
    resolved precision (`agnews.model.device`); inputs go to the model's device. `progress` (a tqdm
    bar or None) advances by rows. `multiple` rounds batch widths up (see below).
    """
    model.eval()
    device = next(model.parameters()).device
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    order = np.argsort(-lengths, kind="stable")
    out = np.zeros((len(seqs), model.config.num_labels), dtype=np.float32)
    with autocast(precision, device):
        # multiple=1 (the default): sorted by length, a batch's texts are within a token or
        # two of each other, so rounding widths up to 16 would only add work for one pass
        # over a test split; a process that scores request after request (the served model)
        # rounds them, or the kernel caches of every new width keep its memory growing.
        for idx, ids, mask in batches(seqs, batch_size, pad_id, order, multiple=multiple):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            out[idx] = logits.float().cpu().numpy()
            if progress is not None:
                progress.update(len(idx))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
