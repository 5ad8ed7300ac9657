"""After training: export the classifier to ONNX, quantize it, and pick the runtime that scores.

`pick_runtime` scores the test rows with PyTorch (the reference), exports the model, then has
ONNX Runtime score the same rows in fp32 and with int8 weights, and OpenVINO on the fp32 graph
at PyTorch's scoring precision, in a process of its own (`agnews.model.onnx_trial`, started as
the export begins), each timed, and lets the parity gate (`agnews.model.parity`) choose.
Choosing for itself (`auto`), it stops a variant once PyTorch's time for the rows has passed, or
sooner once its pace is on course for well past that time (either way it cannot be the fastest,
so it is not judged), or once it has disagreed with PyTorch on more rows than the gate's bound
allows (it has failed already). A model whose export, quantization or ONNX scoring fails scores
with PyTorch, and the run says why in one line; where OpenVINO alone fails (not installed, or
refusing the graph), the others are judged without it.

The export is torch's TorchScript-based exporter (`dynamo=False`), the path optimum exports BERT
models through: ONNX Runtime's quantizer cannot infer the shapes of the graph torch's newer
dynamo exporter writes for this model (onnx InferenceError, 384 vs 4).
"""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from agnews import PROJECT_DIR
from agnews.model.device import release_freed_memory
from agnews.model.onnx_trial import save_rows, timed
from agnews.model.openvino_runtime import inference_precision
from agnews.model.parity import (
    MIN_AGREEMENT,
    REFERENCE,
    Trial,
    choose,
    disagreeing,
    judge,
    most_disagreements,
    rows_needed,
    slower,
    unavailable,
)
from agnews.model.runtimes import SCORERS, TorchRuntime

OPSET = 17


@dataclass
class RuntimeChoice:
    """The runtime train logs the model with, and the gate's record behind the choice."""

    scorer: str
    reason: str
    onnx: Path | None = None          # the chosen ONNX file; None for PyTorch
    trials: list[Trial] = field(default_factory=list)
    warning: str = ""                 # set when an ONNX variant could not be made
    precision: str = "fp32"           # what OpenVINO scored at (its logged precision)


@dataclass
class Scored:
    """One ONNX variant's pass in `agnews.model.onnx_trial`: its logits (None where it stopped
    early), its seconds, the rows scored, and why it stopped: `disagreements` past the gate's
    most, or the seconds its pace was on course for (`projected`; None where the deadline
    itself passed)."""

    logits: np.ndarray | None
    seconds: float
    rows: int
    disagreements: int | None = None
    projected: float | None = None
    error: str = ""                   # the variant could not score at all


def export_onnx(model, path: Path, attention: str = "eager") -> Path:
    """The classifier as an ONNX graph with dynamic batch and sequence axes; inputs input_ids
    and attention_mask, output logits.

    Traced through transformers' `eager` attention (plain matrix products and softmax), the
    model's own implementation restored afterwards: a trace of `sdpa`, what transformers
    loads, adds the NaN guards and masked `Where` of its mask handling to every layer, which
    ONNX Runtime then runs on every batch (docs/performance.md). `sdpa` is kept for the
    benchmark that compares the two graphs."""
    example = torch.zeros((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    loaded = model.config._attn_implementation
    model.set_attn_implementation(attention)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # the exporter's deprecation and tracer warnings are about its own future, not the
            # model
            warnings.simplefilter("ignore")
            torch.onnx.export(model.cpu().eval(), (example, torch.ones_like(example)),
                              str(path), input_names=["input_ids", "attention_mask"],
                              output_names=["logits"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                            "logits": {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
    finally:
        model.set_attn_implementation(loaded)
    return path


def start_process(command: list[str]) -> subprocess.Popen:
    """The trial process, its stdin open for the "go" (the tests drive one in-process)."""
    return subprocess.Popen(command, cwd=PROJECT_DIR, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class OnnxTrials:
    """`agnews.model.onnx_trial` in a process of its own, started before the graph it scores
    is written: its imports (ONNX Runtime and its quantizer, most of a second) run beside the
    export, which leaves a core idle, and it scores once `results` tells it to.

    `results()`: {variant: Scored}. Logits None for a variant stopped early: after `stop_after`
    seconds or once its pace projected a longer pass (`projected` set), or (`disagreements`
    set) once its classes differed from `reference` (PyTorch's class of each row) on more than
    `most` rows. `cancel()`: the export failed; the process ends without scoring."""

    def __init__(self, onnx: Path, ids: list, pad_id: int, batch_size: int, int8: Path | None,
                 folder: Path, stop_after: float | None = None,
                 reference: np.ndarray | None = None, most: int | None = None,
                 openvino: str | None = None):
        rows, self.out = folder / "rows.npz", folder / "scored.npz"
        save_rows(rows, ids, pad_id, batch_size, reference if most is not None else None)
        command = [sys.executable, "-m", "agnews.model.onnx_trial", str(onnx), str(rows),
                   str(self.out), "--wait"]
        command += ["--int8", str(int8)] if int8 else []
        command += ["--openvino", openvino] if openvino else []
        command += ["--stop-after", repr(stop_after)] if stop_after is not None else []
        command += ["--most-disagreements", str(most)] if most is not None else []
        self.process = start_process(command)

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.communicate("", timeout=600)

    def results(self) -> dict[str, Scored]:
        _, err = self.process.communicate("go\n", timeout=3600)
        if self.process.returncode != 0:
            lines = err.strip().splitlines() or [f"exit code {self.process.returncode}"]
            raise RuntimeError(f"scoring through ONNX Runtime failed: {lines[-1][:200]}")
        scored = np.load(self.out)

        def known(key: str, kind):
            return kind(scored[key]) if key in scored else None

        results = {}
        for name in (s for s in SCORERS if s != REFERENCE):
            seconds = known(f"{name}.seconds", float) or 0.0
            if f"{name}.error" in scored:
                results[name] = Scored(None, 0.0, 0, error=str(scored[f"{name}.error"]))
            elif f"{name}.logits" in scored:
                logits = scored[f"{name}.logits"]
                results[name] = Scored(logits, seconds, len(logits))
            elif f"{name}.stopped_rows" in scored:
                results[name] = Scored(None, seconds, int(scored[f"{name}.stopped_rows"]),
                                       known(f"{name}.disagreements", int),
                                       known(f"{name}.projected_seconds", float))
        return results


def pick_runtime(model, precision, ids: list[list[int]], labels: np.ndarray, pad_id: int,
                 batch_size: int, folder: Path, asked: str = "auto") -> RuntimeChoice:
    """Score the rows `ids` with PyTorch and each ONNX variant `asked` allows (all for auto),
    judge each against PyTorch (`labels`: each row's class, -1 where a row counts for agreement
    only), and choose; ONNX files are written into `folder`. For auto, a variant slower than
    PyTorch is stopped, not judged, and one that disagrees too often is stopped, failed."""
    from agnews.model.padding import softmax

    needed = rows_needed()
    if asked == "auto" and len(ids) < needed:
        return RuntimeChoice(REFERENCE, f"only {len(ids)} rows to judge on: even full "
                             f"agreement could not show {MIN_AGREEMENT:.1%} (that needs "
                             f"{needed} rows), so no other runtime was tried")
    release_freed_memory()  # training's freed memory, under the reference pass's batches
    reference, seconds = timed(TorchRuntime(model, precision), ids, batch_size, pad_id)
    reference = softmax(reference)
    # PyTorch is the reference: it passes by definition (its bound only says how many rows)
    trials = [replace(judge(REFERENCE, reference, reference, labels, seconds), passed=True,
                      why="the model itself")]
    wanted = [s for s in SCORERS if s != REFERENCE and asked in ("auto", s)]
    onnx: dict[str, Path] = {}
    warning = ""
    if wanted:
        device = next(model.parameters()).device
        release_freed_memory()  # the reference pass's, under the exporter's copies of the weights
        fp32 = folder / "model.onnx"
        int8 = folder / "model.int8.onnx" if "onnx-int8" in wanted else None
        openvino = inference_precision(precision.score) if "openvino" in wanted else None
        # choosing for itself, a pass stops once it cannot be chosen: slower, or failed
        stop_after = seconds if asked == "auto" else None
        most = most_disagreements(len(ids)) if asked == "auto" else None
        scoring = None
        try:
            scoring = OnnxTrials(fp32, ids, pad_id, batch_size, int8, folder, stop_after,
                                 reference.argmax(axis=1), most, openvino)
            export_onnx(model, fp32)
            for name, run in scoring.results().items():
                if run.error:
                    trials.append(unavailable(name, len(ids), run.error))
                    continue
                if run.disagreements is not None:
                    trials.append(disagreeing(name, len(ids), run.rows, run.disagreements))
                    continue
                if run.logits is None:
                    trials.append(slower(name, len(ids), run.rows, run.seconds, seconds,
                                         run.projected))
                    continue
                trials.append(judge(name, reference, softmax(run.logits), labels, run.seconds))
                onnx[name] = int8 if name == "onnx-int8" else fp32
        except Exception as err:  # noqa: BLE001 - any failure to export means PyTorch scores
            if scoring is not None:
                scoring.cancel()
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            warning = (f"the model did not export to ONNX ({type(err).__name__}: {first}): "
                       "it scores with PyTorch")
            onnx.clear()
            trials = trials[:1]
        finally:
            model.to(device)  # the export ran on the CPU
    scorer, reason = choose(trials, asked if asked in onnx else "auto")
    if warning:
        reason = f"{warning}; {reason}"
    return RuntimeChoice(scorer, reason, onnx.get(scorer), trials, warning,
                         inference_precision(precision.score))
