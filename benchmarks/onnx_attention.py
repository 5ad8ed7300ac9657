#!/usr/bin/env python3
"""The ONNX graph traced through each attention implementation, scored side by side.

Exports a trained model's classifier twice, its attention traced as PyTorch's fused
`scaled_dot_product_attention` (`sdpa`, what transformers loads) and as transformers' plain
matrix products and softmax (`eager`), quantizes each to int8 as train does, and scores every
row of the data's test split with the four graphs in turn, `--rounds` times in alternating
order. Prints each graph's rows/s (median and range of the rounds), how many rows its class
differs from the same precision's other graph and from PyTorch fp32, and its accuracy, then
the time ONNX Runtime's profiler gives each operator type in one pass of each fp32 graph.

    python benchmarks/onnx_attention.py --model-uri runs:/<train run>/model \\
        --data <AG News folder> --rounds 3

`--data` is a folder in the AG News CSV layout (test.csv): by default `$AGNEWS_DATA`, else the
repository's sample. Run by hand (minutes), never in the test suite.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def operator_seconds(path: Path, ids: list, batch_size: int, pad: int) -> dict[str, float]:
    """Seconds per operator type in one profiled pass of the graph at `path`."""
    import onnxruntime

    from agnews.model.runtimes import OnnxRuntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling, options.log_severity_level = True, 3
    options.profile_file_prefix = str(path.with_suffix(""))
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    OnnxRuntime(session, path.stem).logits(ids, batch_size, pad)
    seconds: dict[str, float] = collections.Counter()
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            seconds[event["args"]["op_name"]] += event["dur"] / 1e6
    return dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import mlflow
    import onnxruntime
    import torch

    from agnews.model.device import Precision
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import quantize_int8
    from agnews.model.runtimes import OnnxRuntime, TorchRuntime, onnx_session, open_classifier
    from agnews.tracking.lineage import cpu_model

    config = (mlflow.models.get_model_info(args.model_uri)
              .flavors["python_function"].get("model_config") or {})
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=args.model_uri))
    clf = open_classifier(local / "artifacts" / "classifier", None, "pytorch",
                          int(config.get("max_length", 128)))
    test = pd.read_csv(Path(args.data) / "test.csv", header=None)  # the AG News CSV layout
    texts, labels = (test[1] + " " + test[2]).tolist(), (test[0] - 1).to_numpy()
    ids = clf.tokenizer(texts, truncation=True, max_length=clf.max_length)["input_ids"]
    pad = clf.tokenizer.pad_token_id
    fp32_classes = TorchRuntime(clf.runtime.model, Precision("fp32", "fp32", "asked")).logits(
        ids, args.batch_size, pad).argmax(axis=1)

    with tempfile.TemporaryDirectory() as tmp:
        graphs = {}
        for attention in ("sdpa", "eager"):
            path = export_onnx(clf.runtime.model, Path(tmp) / f"{attention}.onnx", attention)
            graphs[f"{attention} fp32"] = path
            graphs[f"{attention} int8"] = quantize_int8(path, Path(tmp) / f"{attention}.int8.onnx")
        runtimes = {name: OnnxRuntime(onnx_session(path), name) for name, path in graphs.items()}
        speeds: dict[str, list[float]] = {name: [] for name in runtimes}
        classes: dict[str, np.ndarray] = {}
        for r in range(args.rounds):
            for name in (list(runtimes) if r % 2 == 0 else list(runtimes)[::-1]):
                runtimes[name].logits(ids[:args.batch_size], args.batch_size, pad)  # warm-up
                start = time.perf_counter()
                classes[name] = runtimes[name].logits(ids, args.batch_size, pad).argmax(axis=1)
                speeds[name].append(len(ids) / (time.perf_counter() - start))
        operators = {name: operator_seconds(graphs[name], ids, args.batch_size, pad)
                     for name in ("sdpa fp32", "eager fp32")}

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, ONNX Runtime {onnxruntime.__version__}, "
          f"torch {torch.__version__}); model {args.model_uri}; {len(ids)} test rows of "
          f"{args.data}; batches of {args.batch_size}; {args.rounds} rounds")
    print("| graph | rows/s, median (range) | rows differing from the other attention's graph "
          "| rows differing from PyTorch fp32 | accuracy |")
    print("|---|---|---|---|---|")
    for name, rates in speeds.items():
        attention, precision = name.split()
        other = f"{'eager' if attention == 'sdpa' else 'sdpa'} {precision}"
        print(f"| {name} | {statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}) "
              f"| {int((classes[name] != classes[other]).sum())} "
              f"| {int((classes[name] != fp32_classes).sum())} "
              f"| {(classes[name] == labels).mean():.4f} |")
    print("\nONNX Runtime's profiler, one pass of each fp32 graph, seconds by operator type:")
    kinds = sorted(set().union(*operators.values()),
                   key=lambda k: -max(o.get(k, 0.0) for o in operators.values()))
    print("| operator | sdpa fp32 | eager fp32 |\n|---|---|---|")
    for kind in kinds[:12]:
        print(f"| {kind} | {operators['sdpa fp32'].get(kind, 0.0):.2f} "
              f"| {operators['eager fp32'].get(kind, 0.0):.2f} |")
    print(f"| all | {sum(operators['sdpa fp32'].values()):.2f} "
          f"| {sum(operators['eager fp32'].values()):.2f} |")


if __name__ == "__main__":
    main()
