"""Where and in what precision the model runs: a GPU if there is one, bf16 where supported.

bf16 autocast runs matrix products in bfloat16 while the weights, the optimiser state and
the saved model stay float32, so a model trained here loads and serves anywhere. On a CPU
with native bf16 (AVX-512 BF16 or AMX) it trains about 1.4-1.5x faster at equal accuracy;
without native support bf16 is emulated and slower, so `auto` picks fp32 there.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import torch

# oneDNN's kernel cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY) is left at its default of 1,024:
# training builds kernels for ~9 batch shapes x every layer, forward and backward, and a cap of
# 8 rebuilt them all the time: the default train step took 23 s an epoch instead of 25-26 s,
# for 37 MB more peak memory (1,198 vs 1,161 MB). Set it in the environment to trade back.

PRECISIONS = ("auto", "fp32", "bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to ask, so assume no native bf16
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_native(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` becomes bf16 where the device computes it natively, else fp32."""
    if precision == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """The forward-pass context for a resolved precision."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
