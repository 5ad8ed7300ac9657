"""Which precision `auto` means for a model on the device at hand.

- On a GPU: bf16 where the GPU computes it natively (Ampere and newer), else fp16 with loss
  scaling (a T4 or V100, whose bf16 is emulated and slow).
- On a CPU: measured, not read off the CPU flags. AVX-512 BF16 made training 1.4-1.5x faster
  in bf16 on an AMD EPYC, and scoring ~30% slower on an Intel Xeon with the same flag but no
  AMX. The probe times a training step (forward and backward, 16 texts of 64 tokens) and a
  scoring batch (64 texts) in each precision on a copy of the model, alternating, and keeps
  the best of a few rounds, or of one where that round already puts bf16 well clear of the
  margin (`CLEAR`): a few seconds with the stand-in model. The answer is stored in
  `$XDG_CACHE_HOME/agnews-mlflow/precision.json` (default `~/.cache`), keyed by CPU model,
  thread count, torch version and model shape, so later steps and runs reuse it.
"""
from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import torch

from agnews.config import PRECISIONS
from agnews.errors import UserError
from agnews.model.device import Precision, autocast
from agnews.tracking.lineage import cpu_model

CANDIDATES = ("fp32", "bf16")
TRAIN_SHAPE, SCORE_SHAPE = (16, 64), (64, 64)
ROUNDS = 3
# bf16 must win by this much: within it the machine's noise decides, and fp32 is exact.
MARGIN = 0.05
# A round ends a task's probe where bf16's time over fp32's is this far (relatively) below the
# margin's line. One round's ratio fell below that of the best of twenty rounds by at most 15%,
# so the rounds after such a round could not have moved the answer; it rose above it by up to
# 25%, so a round for fp32 never decides alone (docs/performance.md).
CLEAR = 0.2


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "agnews-mlflow" / "precision.json"


def machine_key(config) -> str:
    """What the answer depends on: the CPU, the threads torch uses, torch, the model's shape."""
    shape = "-".join(str(getattr(config, k, "?")) for k in (
        "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size"))
    threads = torch.get_num_threads()
    return f"{cpu_model()} | {threads} threads | torch {torch.__version__} | {shape}"


def _inputs(shape: tuple[int, int], vocab: int, generator: torch.Generator):
    ids = torch.randint(1000, max(1001, vocab), shape, generator=generator)
    return ids, torch.ones_like(ids), torch.zeros(shape[0], dtype=torch.long)


def clear(seconds: dict[str, dict], task: str, by: float = CLEAR) -> bool:
    """Whether `task`'s times put bf16 so far ahead that more rounds could not move the answer:
    bf16 over fp32 below (1 - MARGIN)(1 - by)."""
    return seconds["bf16"][task] / seconds["fp32"][task] < (1 - MARGIN) * (1 - by)


def time_precisions(model, candidates=CANDIDATES, rounds: int = ROUNDS,
                    early: float | None = CLEAR, clock=time.perf_counter) -> dict[str, dict]:
    """Best seconds of a training step and of a scoring batch, per precision: over `rounds`
    rounds, or fewer where a round leaves the task `clear` by `early` (None: every round).

    Runs on a copy under a forked random state, so the caller's model, gradients and random
    streams are exactly as they were (a probed run and a remembered one train identically).
    """
    probe = copy.deepcopy(model)
    device = next(probe.parameters()).device
    generator = torch.Generator().manual_seed(0)
    vocab = getattr(probe.config, "vocab_size", 30522)
    train_in, score_in = _inputs(TRAIN_SHAPE, vocab, generator), _inputs(SCORE_SHAPE, vocab,
                                                                           generator)

    def train_step(precision: str) -> None:
        probe.train()
        ids, mask, labels = (t.to(device) for t in train_in)
        with autocast(precision, device):
            loss = probe(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        probe.zero_grad(set_to_none=True)

    @torch.inference_mode()
    def score_batch(precision: str) -> None:
        probe.eval()
        ids, mask, _ = (t.to(device) for t in score_in)
        with autocast(precision, device):
            probe(input_ids=ids, attention_mask=mask)

    best = {p: {"train": float("inf"), "score": float("inf")} for p in candidates}
    with torch.random.fork_rng(devices=[]):
        for task, run in (("train", train_step), ("score", score_batch)):
            for p in candidates:  # warm-up: the first call builds the CPU kernels
                run(p)
            for _ in range(rounds):
                for p in candidates:
                    start = clock()
                    run(p)
                    best[p][task] = min(best[p][task], clock() - start)
                if early is not None and set(candidates) == {"fp32", "bf16"} and \
                        clear(best, task, early):
                    break
    return best


def decide(seconds: dict[str, dict], task: str) -> str:
    """bf16 only if it beats fp32 by more than MARGIN."""
    return "bf16" if seconds["bf16"][task] < seconds["fp32"][task] * (1 - MARGIN) else "fp32"


def describe(seconds: dict[str, dict], remembered: bool) -> str:
    parts = [f"{task} fp32 {seconds['fp32'][task] * 1e3:.0f} ms vs bf16 "
             f"{seconds['bf16'][task] * 1e3:.0f} ms" for task in ("train", "score")]
    where = "remembered from a probe" if remembered else "probed"
    return f"{where} on {cpu_model()}: " + ", ".join(parts)


def read_answers(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def store_answer(path: Path, key: str, seconds: dict) -> None:
    """Add one answer; written beside and renamed, so a concurrent reader never sees half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        known = read_answers(path)
        known[key] = seconds
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only means probing again next time


def measured_cpu_precision(model) -> Precision:
    key = machine_key(model.config)
    path = cache_file()
    seconds = read_answers(path).get(key)
    remembered = seconds is not None
    if not remembered:
        seconds = time_precisions(model)
        store_answer(path, key, seconds)
    return Precision(decide(seconds, "train"), decide(seconds, "score"),
                     describe(seconds, remembered))


def gpu_precision(device: torch.device) -> Precision:
    """bf16 where the GPU computes it natively, else fp16 (loss scaling in training)."""
    name = torch.cuda.get_device_name(device)
    major, minor = torch.cuda.get_device_capability(device)
    where = f"{name} (compute capability {major}.{minor})"
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return Precision("bf16", "bf16", f"{where} computes bf16 natively")
    return Precision("fp16", "fp16", f"{where} has no native bf16: fp16 with loss scaling")


def choose_precision(precision: str, model) -> Precision:
    """Resolve `precision` (auto|fp32|bf16|fp16) for `model` on the device it sits on."""
    if precision not in PRECISIONS:
        raise UserError(f"precision='{precision}' is not one of {', '.join(PRECISIONS)}")
    device = next(model.parameters()).device
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision=fp16 needs a CUDA GPU and none is in use: pass auto, fp32 "
                        "or bf16")
    if precision != "auto":
        return Precision(precision, precision, "asked for with -P precision")
    if device.type == "cuda":
        return gpu_precision(device)
    return measured_cpu_precision(model)
