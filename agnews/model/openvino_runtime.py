"""The exported ONNX graph scored by OpenVINO's CPU plugin, a fourth runtime for the parity gate.

Why another runtime: PyTorch's eager pass spends about half its time outside the matrix
products (casts, layer norms, GELU, attention's small operators, dispatch: docs/performance.md),
and ONNX Runtime has no bf16 kernels on x86. OpenVINO compiles the same fp32 graph ONNX
Runtime scores into fused kernels at the precision it is given (bf16 where the CPU has it), so
it scores at the speed of the products with floats that agree with PyTorch's as closely as
bf16 autocast does. It reads the ONNX file directly (no conversion step, none of its
conversion tools, and none of their telemetry) and imports in a fraction of a second,
without torch.

The precision is train's: `auto` measured fp32 against bf16 for scoring on the machine that
trained, and the gate judged OpenVINO at that precision, so the logged model carries it and
every step that opens the model scores at it (a step's own `-P precision=fp32` or `bf16`
overrides).
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from agnews.model.runtimes import OnnxRuntime

NAME = "openvino"


def import_openvino():
    """OpenVINO's runtime without its model-conversion tools. `import openvino` imports
    `openvino.tools.ovc` too, which on import sends a usage event to Google Analytics and writes
    a client id under ~/intel unless the user has opted out; the package skips the tools when
    their import fails, and nothing here converts models. A process that imported OpenVINO
    before keeps what it has; the tools stay importable afterwards for code that asks."""
    if "openvino" not in sys.modules:
        sys.modules["openvino.tools.ovc"] = None  # an import of it now fails: skipped
        try:
            import openvino  # noqa: F401
        finally:
            del sys.modules["openvino.tools.ovc"]
    return sys.modules["openvino"]


def inference_precision(score: str) -> str:
    """The precision OpenVINO scores at for a resolved (or asked) scoring precision: bf16
    stays bf16; everything else is fp32 (fp16 is a GPU precision here, and OpenVINO runs on
    the CPU)."""
    return "bf16" if score == "bf16" else "fp32"


class OpenVinoSession:
    """ONNX Runtime's `session.run(outputs, feeds)` over an OpenVINO compiled model, so the
    ONNX runtime's batch loop drives it. An infer request per thread: a request is not safe to
    share, and a served model answers from several threads."""

    def __init__(self, path: Path, precision: str):
        openvino = import_openvino()
        self.precision = precision
        # LATENCY: one stream on all the cores, each batch as fast as it goes. THROUGHPUT's
        # streams (a core each, batches at once) scored no faster on the stand-in and 1.07x on
        # TinyBERT's shape, and destroying such a compiled model hung once in the tests
        # (docs/performance.md)
        self.compiled = openvino.Core().compile_model(str(path), "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY"})
        self.local = threading.local()

    def run(self, outputs, feeds: dict) -> list:
        request = getattr(self.local, "request", None)
        if request is None:
            request = self.local.request = self.compiled.create_infer_request()
        # infer copies its outputs out of the request's buffers (share_outputs=False)
        return [request.infer(feeds)[0]]


@dataclass
class OpenVinoRuntime(OnnxRuntime):
    """OnnxRuntime's batches, scored by OpenVINO, always at exact widths: its memory barely
    grew with the shapes it met (tens of MB over 120,000 texts of every length) while exact
    widths scored a tenth faster (docs/performance.md)."""

    name: str = NAME
    multiple: int = 1

    def tags(self) -> dict[str, str]:
        from agnews.tracking.lineage import cpu_model

        return {"scorer": self.name, "device": "cpu", "precision_score": self.session.precision,
                "device_name": f"{cpu_model()}, OpenVINO {version('openvino')}"}


def open_session(path: Path, precision: str) -> OpenVinoSession:
    return OpenVinoSession(path, inference_precision(precision))
