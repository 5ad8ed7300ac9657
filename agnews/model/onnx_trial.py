"""Scoring the test rows with the exported graph (ONNX Runtime fp32 and int8, OpenVINO) in a
process of its own.

Train's parity gate (`agnews.model.onnx_export.pick_runtime`) starts this module as it exports
the model: here the graph is quantized to int8 and each variant scores the test rows, timed. A
process of its own because the quantizer holds several copies of the graph at once and
each ONNX Runtime session its own copy of the weights: in train's process they would stack on
top of training's peak memory (docs/performance.md), while this process needs only onnxruntime
and NumPy, which import in under a second. It also scores as evaluate will: without torch in
the process.

    python -m agnews.model.onnx_trial <model.onnx> <rows.npz> <out.npz> --int8 <model.int8.onnx> \
        [--openvino fp32|bf16] [--stop-after <seconds>] [--most-disagreements <rows>] [--wait]

With `--openvino` the fp32 graph is scored by OpenVINO too, at that precision (train's).

With `--wait` (as train starts it, before the export) it imports ONNX Runtime and its quantizer
first, then waits for a line `go` on stdin, so its start-up runs while the graph is written.

With `--stop-after` (PyTorch's seconds on the same rows), a variant still scoring when that
time runs out stops there: it can only end slower than PyTorch, so the gate could not choose
it, and judging it would only cost train the rest of its pass. It stops sooner where its pace
says so: after `PROJECT_AFTER` batches, once the time it is on course for (its seconds so far,
scaled by the padded tokens still to score) passes PyTorch's by more than `PROJECTION_MARGIN`.
With `--most-disagreements` (and PyTorch's classes saved with the rows), a variant stops once
it has disagreed with PyTorch on more rows than that: it has failed the gate whatever the rest.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

import numpy as np

from agnews.model.padding import PAD_MULTIPLE, lengths_of, padded_width
from agnews.model.runtimes import OnnxRuntime, onnx_session

OPENVINO = "openvino"

# Projected from its first batches (the longest texts, which cost more per token), a pass's
# time overshot its real time by up to 32% after the first batch and at most 20% from the third
# on (docs/performance.md): so the projection is trusted from the third batch, and only past
# PyTorch's time by more than that.
PROJECT_AFTER = 3
PROJECTION_MARGIN = 0.3


def save_rows(path: Path, ids: list, pad_id: int, batch_size: int,
              reference: np.ndarray | None = None) -> None:
    """Ragged token ids as one flat array and their offsets; `reference`: PyTorch's class of
    each row, for a pass that stops once it disagrees too often."""
    lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in ids]) if len(ids) else \
        np.zeros(0, dtype=np.int64)
    extra = {} if reference is None else {"reference": np.asarray(reference, dtype=np.int64)}
    np.savez(path, flat=flat, offsets=np.concatenate([[0], np.cumsum(lengths)]),
             pad_id=pad_id, batch_size=batch_size, **extra)


def load_rows(path: Path) -> tuple[list[np.ndarray], int, int, np.ndarray | None]:
    data = np.load(path)
    flat, offsets = data["flat"], data["offsets"]
    ids = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    reference = data["reference"] if "reference" in data else None
    return ids, int(data["pad_id"]), int(data["batch_size"]), reference


def quantize_int8(source: Path, path: Path) -> Path:
    """Dynamic int8 quantization, ONNX Runtime's own: weights int8 per output channel (per
    tensor, its default, moved more predictions: docs/performance.md), activations quantized
    at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # it advises pre-processing the graph at every call: that is for static quantization
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(str(source), str(path), per_channel=True, weight_type=QuantType.QInt8)
    return path


class Stopped(Exception):
    """A variant's pass ended early: `slower` (its deadline passed, or its pace was on course
    for `projected` seconds, past it) or `disagrees` (past the disagreements the gate allows);
    `rows` were scored by then."""

    def __init__(self, why: str, rows: int, seconds: float, disagreements: int,
                 projected: float | None = None):
        super().__init__(f"{why}: {rows} rows in {seconds:.2f} s")
        self.why, self.rows, self.seconds = why, rows, seconds
        self.disagreements, self.projected = disagreements, projected


def padded_tokens(lengths: np.ndarray, multiple: int = PAD_MULTIPLE) -> int:
    """A batch's padded tokens (rows x width rounded up to `multiple`) given the lengths of its
    rows: what the batch costs, near enough, in every runtime."""
    return len(lengths) * padded_width(int(lengths.max()), multiple)


class Watch:
    """Checked after each batch of a variant's pass: raises Stopped once `seconds` have passed
    since it was made, or (given `lengths`, the rows' token counts, and the `batch_size` the
    pass uses) once its pace projects a pass longer than `seconds` by more than
    PROJECTION_MARGIN, or once the batches' classes differ from `reference` (PyTorch's class of
    each row) on more than `most` rows."""

    def __init__(self, seconds: float | None = None, reference: np.ndarray | None = None,
                 most: int | None = None, lengths: np.ndarray | None = None,
                 batch_size: int = 0, clock=time.perf_counter):
        self.seconds, self.reference, self.most = seconds, reference, most
        self.rows = self.disagreements = self.batches = self.tokens = 0
        self.lengths, self.total = lengths, 0
        if lengths is not None and len(lengths) and batch_size > 0:
            ordered = np.sort(lengths)[::-1]  # longest first, as every runtime scores
            self.total = sum(padded_tokens(ordered[i:i + batch_size])
                             for i in range(0, len(ordered), batch_size))
        self.clock = clock
        self.start = clock()

    def batch(self, idx: np.ndarray, logits: np.ndarray) -> None:
        self.rows += len(idx)
        self.batches += 1
        elapsed = self.clock() - self.start
        if self.reference is not None and self.most is not None:
            self.disagreements += int((logits.argmax(axis=1) != self.reference[idx]).sum())
            if self.disagreements > self.most:
                raise Stopped("disagrees", self.rows, elapsed, self.disagreements)
        if self.seconds is None:
            return
        if elapsed > self.seconds:
            raise Stopped("slower", self.rows, elapsed, self.disagreements)
        if self.total:
            self.tokens += padded_tokens(self.lengths[idx])
            projected = elapsed * self.total / self.tokens
            if (self.batches >= PROJECT_AFTER
                    and projected > self.seconds * (1 + PROJECTION_MARGIN)):
                raise Stopped("slower", self.rows, elapsed, self.disagreements, projected)


def timed(runtime, ids: list, batch_size: int, pad_id: int, stop_after: float | None = None,
          reference: np.ndarray | None = None, most: int | None = None
          ) -> tuple[np.ndarray, float]:
    """Logits of every row and the seconds they took with any runtime (PyTorch's or ONNX
    Runtime's), after one untimed batch (the first call builds the runtime's kernels). With
    `stop_after`, or `reference` and `most` (see Watch), an ONNX Runtime pass raises Stopped
    when it runs longer or disagrees more."""
    runtime.logits(ids[:batch_size], batch_size, pad_id)
    start = time.perf_counter()
    if stop_after is None and most is None:
        logits = runtime.logits(ids, batch_size, pad_id)
    else:
        watch = Watch(stop_after, reference, most, lengths_of(ids), batch_size)
        logits = runtime.logits(ids, batch_size, pad_id, on_batch=watch.batch)
    return logits, time.perf_counter() - start


def ready(quantizing: bool, stdin, openvino: bool = False) -> bool:
    """Started while train still writes the graph: import what scoring (and quantizing) needs,
    a second or so, then wait for train's "go" (False: it sent none, the export failed)."""
    import onnxruntime  # noqa: F401

    if quantizing:
        import onnxruntime.quantization  # noqa: F401
    if openvino:
        from agnews.model.openvino_runtime import import_openvino

        with contextlib.suppress(ImportError):  # its variant says so when it runs
            import_openvino()
    return stdin.readline().strip() == "go"


def open_variant(name: str, path: Path, precision: str) -> OnnxRuntime:
    if name == OPENVINO:
        from agnews.model.openvino_runtime import OpenVinoRuntime, open_session

        return OpenVinoRuntime(open_session(path, precision))
    return OnnxRuntime(onnx_session(path), name)


def main(argv=None, stdin=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("rows", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--int8", type=Path, default=None)
    parser.add_argument("--openvino", choices=("fp32", "bf16"), default=None)
    parser.add_argument("--stop-after", type=float, default=None)
    parser.add_argument("--most-disagreements", type=int, default=None)
    parser.add_argument("--wait", action="store_true",
                        help="import ONNX Runtime first, then score once a line 'go' comes on "
                             "stdin (its end without one: exit, scoring nothing)")
    args = parser.parse_args(argv)
    if args.wait and not ready(args.int8 is not None, stdin or sys.stdin,
                               args.openvino is not None):
        return
    ids, pad_id, batch_size, reference = load_rows(args.rows)
    variants = {"onnx": args.onnx}
    if args.int8 is not None:
        variants["onnx-int8"] = quantize_int8(args.onnx, args.int8)
    if args.openvino is not None:
        variants[OPENVINO] = args.onnx
    results = {}
    for name, path in variants.items():
        try:
            logits, seconds = timed(open_variant(name, path, args.openvino), ids, batch_size,
                                    pad_id, args.stop_after, reference, args.most_disagreements)
            results[f"{name}.logits"], results[f"{name}.seconds"] = logits, seconds
        except Stopped as stop:
            results[f"{name}.stopped_rows"], results[f"{name}.seconds"] = stop.rows, stop.seconds
            if stop.projected is not None:
                results[f"{name}.projected_seconds"] = stop.projected
            if stop.why == "disagrees":
                results[f"{name}.disagreements"] = stop.disagreements
        except Exception as err:  # noqa: BLE001 - one runtime that fails leaves the others
            if name != OPENVINO:
                raise  # ONNX Runtime failing on the graph: the export is what failed
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            results[f"{name}.error"] = f"{type(err).__name__}: {first}"
    np.savez(args.out, **results)


if __name__ == "__main__":
    main()
