#!/usr/bin/env python3
"""Write a model folder shaped like TinyBERT (huawei-noah/TinyBERT_General_4L_312D) with
seeded random weights, for timing the workflow where the Hub cannot be reached.

    python benchmarks/tinybert_shaped.py --tokenizer <a BERT model folder> --out <folder>

Speed, memory, precision and checkpoint resume depend on the model's shape, not on its
weights, so figures taken with this folder stand for TinyBERT's; its accuracy does not (the
weights are not pretrained) and must never be reported as TinyBERT's. The tokenizer (any
BERT uncased WordPiece vocabulary; TinyBERT's is bert-base-uncased's 30,522 entries) is
copied from `--tokenizer`.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

# TinyBERT_General_4L_312D's config.json, the fields that decide its cost.
SHAPE = {"hidden_size": 312, "num_hidden_layers": 4, "num_attention_heads": 12,
         "intermediate_size": 1200, "max_position_embeddings": 512, "vocab_size": 30522}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")


def write(tokenizer: Path, out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    BertModel(BertConfig(**SHAPE)).save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer / name).exists():
            shutil.copy(tokenizer / name, out / name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True,
                        help="a BERT model folder whose tokenizer files are copied")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.tokenizer / "vocab.txt").exists():
        raise SystemExit(f"tinybert_shaped: {args.tokenizer} has no vocab.txt; pass a BERT "
                         "model folder as --tokenizer")
    print(f"wrote {write(args.tokenizer, args.out, args.seed)}")


if __name__ == "__main__":
    main()
