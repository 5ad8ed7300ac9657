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
from agnews.model.padding import PAD_MULTIPLE, longest_first, pad_ids, padded_batches, softmax

# PAD_MULTIPLE and softmax are re-exported: train and the tests import them from here.


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int,
              multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence, rounded up to `multiple`; (input_ids, attention_mask)."""
    ids, mask = pad_ids(seqs, pad_id, multiple)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def batches(seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
            order: np.ndarray | None = None, multiple: int = PAD_MULTIPLE
            ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yield (row indices, input_ids, attention_mask) in `order` (default: as given), each
    batch padded to a width that is a multiple of `multiple`."""
    for idx, ids, mask in padded_batches(seqs, batch_size, pad_id, order, multiple):
        yield idx, torch.from_numpy(ids), torch.from_numpy(mask)


CPU_MICRO_BATCH_TOKENS = 512  # what micro_batch_tokens=auto means on a CPU


def micro_batch_cap(setting: str | int, device_type: str) -> int:
    """The `micro_batch_tokens` parameter as a token cap on `device_type` ("cpu", "cuda").

    auto splits on a CPU only: there parts of at most 512 tokens lower training's peak memory
    at the same speed, while a GPU step is bound by kernel launches, which every extra forward
    pass multiplies (docs/performance.md, GPU); a GPU's memory holds a whole batch of AG News.
    """
    if str(setting) != "auto":
        return int(setting)
    return 0 if device_type == "cuda" else CPU_MICRO_BATCH_TOKENS


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
                   precision: str = "fp32", progress=None, multiple: int = 1,
                   split: bool = False) -> np.ndarray:
    """Logits for every sequence, in input order.

    Sequences are scored longest first so each batch holds texts of similar length and
    padding stays minimal; results are scattered back to the input order. `precision` is a
    resolved precision (`agnews.model.device`); inputs go to the model's device. `progress` (a tqdm
    bar or None) advances by rows. `multiple` rounds batch widths up (see below). With `split`,
    a long pass on a CPU may run in two processes (`agnews.model.forked`; a step scoring alone,
    not a server answering requests from several threads).
    """
    from agnews.model.forked import MIN_BATCHES, can_split, split_logits

    model.eval()
    device = next(model.parameters()).device
    # multiple=1 (the default): sorted by length, a batch's texts are within a token or
    # two of each other, so rounding widths up to 16 would only add work for one pass
    # over a test split; a process that scores request after request (the served model)
    # rounds them, or the kernel caches of every new width keep its memory growing.
    todo = batches(seqs, batch_size, pad_id, longest_first(seqs), multiple=multiple)

    def score(batch) -> np.ndarray:
        logits = model(input_ids=batch[1].to(device), attention_mask=batch[2].to(device)).logits
        return logits.float().cpu().numpy()

    classes = model.config.num_labels
    with autocast(precision, device):
        if split and device.type == "cpu" and can_split():
            todo = list(todo)
            if len(todo) >= MIN_BATCHES:
                return split_logits(score, todo, len(seqs), classes, progress)
        out = np.zeros((len(seqs), classes), dtype=np.float32)
        for batch in todo:
            out[batch[0]] = score(batch)
            if progress is not None:
                progress.update(len(batch[0]))
    return out


__all__ = ["PAD_MULTIPLE", "batches", "length_grouped_order", "micro_batches", "pad_batch",
           "predict_logits", "softmax"]
