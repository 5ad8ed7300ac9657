"""Dropout masks from 16 random bits an element, where that is measured faster than torch's.

On a CPU, torch's dropout draws a double from its generator for every element, on one thread,
unless MKL's generator serves it (which torch uses on Intel CPUs only): on an AMD EPYC that was
a fifth of a training step (docs/performance.md). `dropout_masks` times torch's dropout
against `mask_dropout`, which cuts each 64-bit draw of torch's own generator into four 16-bit
lanes, once per machine, and where the lanes win it trains with them: the model's `nn.Dropout`
modules become `MaskDropout` and its attention `ATTENTION` (transformers' SDPA attention, which
on a CPU falls back to plain matrix products whenever it drops out, with the same products and
this mask). Everything is put back when training ends, so what is saved, exported and scored is
the model as loaded. The answer is kept beside the precision probe's, keyed by CPU, threads and
torch, so reruns on a machine draw the same masks from the same seed. Written by hand: neither
torch nor transformers offers a dropout with another mask generator.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from agnews.model.precision import cache_file, read_answers, store_answer
from agnews.tracking.lineage import cpu_model

ATTENTION = "agnews_sdpa_mask_dropout"
LANES = 1 << 16
# The lanes must beat torch's dropout by this much: both are exact Bernoulli masks, so only
# speed decides, and a clear margin keeps the remembered answer from hanging on noise.
MARGIN = 0.2
# An attention-probabilities tensor of one training batch: 16 texts, 12 heads, 64 tokens.
PROBE_SHAPE = (16, 12, 64, 64)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """Booleans, each False with probability round(p * 2**16) / 2**16, from torch's default CPU
    generator (so `torch.manual_seed` and its saved states govern them, as torch's dropout)."""
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
    return bits.view(torch.int16)[:n].view(shape) >= round(p * LANES) - LANES // 2


def mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout of `x` with `keep_mask`: kept elements scaled so each keeps its expected value."""
    dropped = round(p * LANES)
    keep = keep_mask(x.shape, p)
    return torch.where(keep, x * (LANES / (LANES - dropped)), 0)


class MaskDropout(nn.Dropout):
    """`nn.Dropout` with `mask_dropout`'s masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return mask_dropout(x, self.p)


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' SDPA attention, but dropping out with `mask_dropout`: where it drops out,
    the products and softmax SDPA's CPU fallback computes, with the mask SDPA is given (an
    encoder's: a causal or grouped-head attention is left to SDPA whole)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not module.training or dropout == 0 or getattr(module, "is_causal", False) \
            or query.shape[1] != key.shape[1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:  # SDPA's: True where a token may be attended to
        weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
    weights = mask_dropout(torch.softmax(weights, dim=-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `ATTENTION` a name transformers knows, with SDPA's masks."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


def time_masks(rounds: int = 5, clock=time.perf_counter) -> dict[str, float]:
    """Best seconds of torch's dropout and of `mask_dropout` on `PROBE_SHAPE`, alternating."""
    x = torch.ones(PROBE_SHAPE)
    runs = {"torch": lambda: nn.functional.dropout(x, 0.1, True),
            "lanes": lambda: mask_dropout(x, 0.1)}
    best = dict.fromkeys(runs, float("inf"))
    with torch.random.fork_rng(devices=[]):  # the run's random streams stay as they were
        for round_ in range(rounds + 1):  # round 0 warms up and is not counted
            for name, run in runs.items():
                start = clock()
                run()
                if round_:
                    best[name] = min(best[name], clock() - start)
    return best


def measured_masks() -> tuple[bool, str]:
    """Whether the lanes win on this machine, and the timing behind it (remembered)."""
    path = cache_file().with_name("dropout.json")
    key = f"{cpu_model()} | {torch.get_num_threads()} threads | torch {torch.__version__}"
    seconds = read_answers(path).get(key)
    remembered = seconds is not None
    if not remembered:
        seconds = time_masks()
        store_answer(path, key, seconds)
    lanes = seconds["lanes"] < seconds["torch"] * (1 - MARGIN)
    how = "remembered from a probe" if remembered else "probed"
    return lanes, (f"{'16-bit lanes' if lanes else 'torch'}: {how} on {cpu_model()}, torch's "
                   f"{seconds['torch'] * 1e3:.2f} ms vs lanes {seconds['lanes'] * 1e3:.2f} ms")


@contextmanager
def dropout_masks(model) -> Iterator[str]:
    """Train `model` inside this with the faster masks (yields what was used and why)."""
    dropouts = [(parent, name, child) for parent in model.modules()
                for name, child in parent.named_children()
                if type(child) is nn.Dropout and child.p > 0]
    if next(model.parameters()).device.type != "cpu" or not dropouts:
        yield "torch: not on a CPU, or nothing drops out"
        return
    lanes, reason = measured_masks()
    if not lanes:
        yield reason
        return
    register()
    loaded = model.config._attn_implementation
    attention_dropout = loaded == "sdpa"  # only SDPA's is replaced; eager keeps torch's
    for parent, name, child in dropouts:
        setattr(parent, name, MaskDropout(child.p))
    if attention_dropout:
        model.set_attn_implementation(ATTENTION)
    try:
        yield reason
    finally:
        for parent, name, child in dropouts:
            setattr(parent, name, child)
        if attention_dropout:
            model.set_attn_implementation(loaded)
