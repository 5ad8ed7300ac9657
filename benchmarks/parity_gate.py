#!/usr/bin/env python3
"""The parity gate's error rates, and each runtime's speed, on a trained model.

Scores every row of the data's test split with PyTorch (fp32 and the precision `auto` picks),
ONNX Runtime fp32 and ONNX Runtime int8 (exported and quantized as train does) and OpenVINO on
the fp32 graph at the precision `auto` picks (as train judges it), prints each
runtime's rows/s, agreement with PyTorch and accuracy on the whole split, then draws `--draws`
random subsets of each size in `--sizes` and prints how often the gate passes each runtime on a
subset of that size (a train run judges agreement on its val and test rows: 700 by
default). Against the whole split's agreement that is the gate's error rate: how often a
runtime under the 99.5% floor passes on fewer rows, and how often one above it fails.

    python benchmarks/parity_gate.py --model-uri runs:/<train run>/model \\
        --data <AG News folder> --draws 2000 --sizes 500,700,1700,5000

`--data` is a folder in the AG News CSV layout (test.csv): by default `$AGNEWS_DATA`, else the
repository's sample (1,200 test rows; the figures in docs/performance.md use all 7,600).

`--block-int8 32,128` adds, for each block size, the graph with 8-bit weights in blocks of that
many inputs and activations quantized to int8 block by block at run time (ONNX Runtime's
`MatMulNBits`, accuracy level 4), a finer-grained int8 than `quantize_dynamic`'s one scale per
tensor; its quantizer needs `pip install onnx-ir`, which the project does not depend on.

`--fused-int8` adds the order of Microsoft's BERT quantization notebook: ONNX Runtime's
offline BERT fusions (`onnxruntime.transformers.optimizer`: attention, skip and embedding layer
norms, bias GELU) on the exported graph, then the same dynamic int8 as train's.

Run by hand (a few minutes), never in the test suite.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("AGNEWS_DATA") or str(ROOT / "data" / "ag_news_sample")


def block_int8(source: Path, path: Path, block: int) -> Path:
    """8-bit weights in blocks of `block` inputs, activations quantized block by block at run
    time (`MatMulNBits`, accuracy level 4: int8 products)."""
    import onnx
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as err:
        sys.exit(f"benchmark: --block-int8 needs the onnx-ir package ({err}): "
                 "pip install onnx-ir")
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=block,
                                     is_symmetric=True, accuracy_level=4)
    quantizer.process()
    quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
    return path


def fused_int8(source: Path, path: Path, config) -> Path:
    """The graph with ONNX Runtime's BERT fusions, then train's dynamic int8 (per channel)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = path.with_suffix(".fp32.onnx")
    optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                   hidden_size=config.hidden_size).save_model_to_file(str(fused))
    # shape inference cannot type the fused operators' (com.microsoft) outputs
    quantize_dynamic(str(fused), str(path), per_channel=True, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--sizes", default="500,700,1700,5000")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--block-int8", default="", help="block sizes, e.g. 32,128")
    parser.add_argument("--fused-int8", action="store_true",
                        help="add int8 after ONNX Runtime's BERT fusions")
    args = parser.parse_args()

    import mlflow
    import torch

    from agnews.evaluation.intervals import wilson
    from agnews.model.device import Precision
    from agnews.model.onnx_export import export_onnx
    from agnews.model.onnx_trial import quantize_int8, timed
    from agnews.model.openvino_runtime import OpenVinoRuntime, open_session
    from agnews.model.padding import softmax
    from agnews.model.parity import judge
    from agnews.model.runtimes import OnnxRuntime, TorchRuntime, onnx_session, open_classifier
    from agnews.tracking.lineage import cpu_model

    info = mlflow.models.get_model_info(args.model_uri)
    config = info.flavors["python_function"].get("model_config") or {}
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=args.model_uri))
    clf = open_classifier(local / "artifacts" / "classifier", None, "pytorch",
                          int(config.get("max_length", 128)))
    test = pd.read_csv(Path(args.data) / "test.csv", header=None)  # the AG News CSV layout
    test = pd.DataFrame({"text": test[1] + " " + test[2], "label": test[0] - 1})
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    ids = clf.tokenizer(texts, truncation=True, max_length=clf.max_length)["input_ids"]
    pad = clf.tokenizer.pad_token_id

    model = clf.runtime.model
    runtimes = {"pytorch fp32": TorchRuntime(model, Precision("fp32", "fp32", "asked")),
                f"pytorch {clf.runtime.precision.score} (auto)": clf.runtime}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "model.onnx")
        runtimes["onnx"] = OnnxRuntime(onnx_session(fp32), "onnx")
        runtimes["onnx-int8"] = OnnxRuntime(onnx_session(
            quantize_int8(fp32, Path(tmp) / "model.int8.onnx")), "onnx-int8")
        runtimes["openvino"] = OpenVinoRuntime(open_session(fp32, clf.runtime.precision.score))
        for block in filter(None, args.block_int8.split(",")):
            name = f"onnx int8 blocks of {block}"
            runtimes[name] = OnnxRuntime(onnx_session(
                block_int8(fp32, Path(tmp) / f"model.block{block}.onnx", int(block))), name)
        if args.fused_int8:
            runtimes["onnx int8 after fusions"] = OnnxRuntime(onnx_session(fused_int8(
                fp32, Path(tmp) / "model.fused.int8.onnx", model.config)), "onnx-int8")
        scored = {name: (softmax(logits), seconds) for name, (logits, seconds) in (
            (name, timed(r, ids, args.batch_size, pad)) for name, r in runtimes.items())}
    reference = scored[f"pytorch {clf.runtime.precision.score} (auto)"][0]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores, torch {torch.get_num_threads()} "
          f"threads); model {args.model_uri}; {len(texts)} test rows of {args.data}")
    print("| runtime | rows/s | agreement with PyTorch (auto), 95% CI | accuracy | McNemar p |")
    print("|---|---|---|---|---|")
    for name, (probs, seconds) in scored.items():
        t = judge(name, reference, probs, labels, seconds)
        low, high = wilson(round(t.agreement * t.rows), t.rows)  # two-sided 95%, to read
        print(f"| {name} | {t.rows_per_second:.0f} | {t.agreement:.4f} ({low:.4f}-{high:.4f}) "
              f"| {t.accuracy:.4f} | {t.p_worse:.3g} |", flush=True)
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in args.sizes.split(",") if int(s) <= len(texts)]
    print(f"\nHow often the gate passes each runtime on n random rows of the test split, "
          f"judged as train judges ({args.draws} draws each):")
    print("| runtime | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in ("onnx", "onnx-int8", "openvino"):
        probs = scored[name][0]
        rates = []
        for n in sizes:
            passed = 0
            for _ in range(args.draws):
                rows = rng.choice(len(texts), n, replace=False)
                passed += judge(name, reference[rows], probs[rows], labels[rows], 1.0).passed
            rates.append(f"{passed / args.draws:.1%}")
        print(f"| {name} | " + " | ".join(rates) + " |", flush=True)


if __name__ == "__main__":
    main()
