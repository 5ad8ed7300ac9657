"""The runtimes a logged classifier scores with, and opening one from the model's folder.

Train logs the classifier's Hugging Face folder and, where a runtime on the exported graph
passed the parity gate (`agnews.model.parity`) and was the fastest, its ONNX file;
`model_config["runtime"]` names the variant: `pytorch`, `onnx` (ONNX Runtime, fp32),
`onnx-int8` or `openvino` (OpenVINO on the fp32 graph, at the precision in
`model_config["inference_precision"]`: `agnews.model.openvino_runtime`). Evaluate, predict,
monitor and the served pyfunc all open the model through `open_classifier`, so each scores
with the variant train chose. A graph runtime needs neither torch nor transformers: the
`tokenizers` library reads the saved tokenizer.json and the runtime the graph, so a step that
scores through it starts in a fraction of the time. Where the ONNX file cannot be opened (or
the runtime is not installed), scoring falls back to PyTorch with a one-line warning.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agnews.model.padding import PAD_MULTIPLE, longest_first, padded_batches, softmax

# Deferred imports: torch, transformers (the PyTorch runtime only), onnxruntime and openvino
# (their runtimes only), so that opening one never pays for the others.

SCORERS = ("pytorch", "onnx", "onnx-int8", "openvino")
# Texts tokenized and scored at a time: enough for batches of similar lengths, few enough
# that a million texts cost no more memory than four thousand.
CHUNK_ROWS = 4096


@dataclass
class TorchRuntime:
    """The fine-tuned model in PyTorch, at the scoring precision resolved for its device.
    `split`: a long pass on a CPU may run in two processes (`agnews.model.forked`)."""

    model: object
    precision: object  # agnews.model.device.Precision
    name: str = "pytorch"
    split: bool = False

    def logits(self, seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
               progress=None, multiple: int = 1) -> np.ndarray:
        from agnews.model.batching import predict_logits

        return predict_logits(self.model, seqs, batch_size, pad_id, self.precision.score,
                              progress, multiple, self.split)

    def tags(self) -> dict[str, str]:
        from agnews.model.device import device_name

        device = next(self.model.parameters()).device
        return {"scorer": self.name, **self.precision.tags(), "device": str(device),
                "device_name": device_name(device)}


@dataclass
class OnnxRuntime:
    """The model exported to ONNX (fp32, or with int8 weights), scored by ONNX Runtime."""

    session: object  # onnxruntime.InferenceSession (or what has its run)
    name: str        # onnx | onnx-int8
    # Widths rounded to this, whatever the caller's `multiple` (which bounds PyTorch's kernel
    # caches): ONNX Runtime keeps buffers for every input shape it meets, so a pass over
    # thousands of texts of every length would grow its memory. OpenVINO's does not: 1.
    multiple: int = PAD_MULTIPLE

    def logits(self, seqs: Sequence[Sequence[int]], batch_size: int, pad_id: int,
               progress=None, multiple: int = 1, on_batch=None) -> np.ndarray:
        """`on_batch(row indices, their logits)`, where given, hears each batch as it is
        scored (train's parity gate stops a pass from it)."""
        out: np.ndarray | None = None
        for idx, ids, mask in padded_batches(seqs, batch_size, pad_id, longest_first(seqs),
                                             self.multiple):
            logits = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            if out is None:
                out = np.zeros((len(seqs), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
            if progress is not None:
                progress.update(len(idx))
            if on_batch is not None:
                on_batch(idx, logits)
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def tags(self) -> dict[str, str]:
        import onnxruntime

        from agnews.tracking.lineage import cpu_model

        return {"scorer": self.name, "device": "cpu",
                "device_name": f"{cpu_model()}, ONNX Runtime {onnxruntime.__version__}"}


def logged_runtime(config: dict) -> str:
    """The runtime a logged model scores with: `runtime` in its model_config, `scorer` in
    versions logged before that name, PyTorch in versions logged before the parity gate."""
    return str(config.get("runtime", config.get("scorer", "pytorch")))


def onnx_session(path: Path, memory_patterns: bool = False):
    """An ONNX Runtime session on the CPU, with its default thread count (the cores).

    Without `memory_patterns`: ONNX Runtime plans and keeps one block of memory per input
    shape it meets, for graphs whose shapes repeat; a text classifier meets a new width every
    few batches, and the plans cost a quarter of the session's memory for no speed
    (docs/performance.md, "ONNX Runtime's memory patterns"). The parameter is for the
    benchmark that compares the two."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # its own warnings are about graph rewrites, not the user's
    options.enable_mem_pattern = memory_patterns
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class Classifier:
    """A logged classifier opened for scoring: raw texts in, class probabilities out."""

    runtime: TorchRuntime | OnnxRuntime  # OpenVinoRuntime is an OnnxRuntime
    tokenizer: object  # transformers' tokenizer or agnews' FastTokenizer: called alike
    max_length: int    # the truncation it was logged with: what a served model would see
    labels: list[str]

    @property
    def scorer(self) -> str:
        return self.runtime.name

    def probabilities(self, texts: list[str], batch_size: int, progress=None,
                      multiple: int = 1, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """Rows in input order, columns in label order; tokenized and scored `chunk_rows`
        texts at a time, so memory does not grow with the texts (a tokenizer's output holds
        several KB a text).

        Widths after the first chunk are rounded up to PAD_MULTIPLE: every new input shape
        grows the CPU kernels' caches, and over a hundred thousand texts of every length that
        added most of a GB; one chunk of exact widths costs no such growth and no padding."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), chunk_rows):
            part = texts[start:start + chunk_rows]
            ids = self.tokenizer(part, truncation=True, max_length=self.max_length)["input_ids"]
            out[start:start + len(part)] = softmax(self.runtime.logits(
                ids, batch_size, self.tokenizer.pad_token_id, progress,
                multiple if start == 0 else max(multiple, PAD_MULTIPLE)))
        return out


def folder_labels(folder: Path) -> list[str]:
    """The label names in class order, from the model's config.json."""
    id2label = json.loads((folder / "config.json").read_text(encoding="utf-8"))["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def open_onnx(folder: Path, onnx: Path, scorer: str, max_length: int,
              precision: str = "fp32") -> Classifier:
    """The graph `onnx` scored by ONNX Runtime, or by OpenVINO at `precision` (fp32, bf16)."""
    from agnews.model.fast_tokenizer import FastTokenizer

    if scorer == "openvino":
        from agnews.model.openvino_runtime import OpenVinoRuntime, open_session

        runtime: OnnxRuntime = OpenVinoRuntime(open_session(onnx, precision))
    else:
        runtime = OnnxRuntime(onnx_session(onnx), scorer)
    return Classifier(runtime, FastTokenizer.from_folder(folder), max_length,
                      folder_labels(folder))


def open_torch(model, tokenizer, max_length: int, precision: str,
               split: bool = False) -> Classifier:
    """A loaded transformers model and tokenizer, on the scoring device, as a Classifier
    (`split`: as `TorchRuntime`'s)."""
    from agnews.model.device import pick_device
    from agnews.model.first_token import first_token_only
    from agnews.model.precision import choose_precision

    first_token_only(model)  # the last layer computes only what the head reads
    model = model.to(pick_device()).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return Classifier(TorchRuntime(model, choose_precision(precision, model), split=split),
                      tokenizer, max_length, labels)


def open_classifier(folder: Path, onnx: Path | None, scorer: str, max_length: int,
                    precision: str = "auto", split: bool = False,
                    logged_precision: str = "fp32") -> Classifier:
    """The classifier in `folder` (a Hugging Face folder) scored by `scorer`; a graph scorer
    whose file is missing or does not open falls back to PyTorch, saying so in one line.
    `split`: as `TorchRuntime`'s. OpenVINO scores at `precision` where one is asked for, else
    at `logged_precision`, the one the gate judged it at."""
    if scorer != "pytorch":
        try:
            if onnx is None:
                raise FileNotFoundError("the model holds no ONNX file")
            return open_onnx(folder, onnx, scorer, max_length,
                             logged_precision if precision == "auto" else precision)
        except Exception as err:  # noqa: BLE001 - any failure to open it means PyTorch serves
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            print(f"agnews: warning: the model's {scorer} scorer did not open ({first}): "
                  "scoring with PyTorch instead", file=sys.stderr, flush=True)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return open_torch(AutoModelForSequenceClassification.from_pretrained(folder),
                      AutoTokenizer.from_pretrained(folder), max_length, precision, split)
