"""Which pretrained weights training leaves fixed.

Frozen weights need no gradient and no AdamW moments; frozen lowest layers also need no
backward pass at all, since autograd stops at the first layer that trains
(docs/performance.md, "All the data").
"""
from __future__ import annotations

import torch

from agnews.errors import UserError


def encoder_layers(model) -> torch.nn.ModuleList:
    """The transformer blocks of a Hugging Face encoder, lowest first: the module list under
    the base model holding `num_hidden_layers` blocks (`encoder.layer` in BERT, `transformer.
    layer` in DistilBERT), found by shape so no architecture's attribute names are assumed."""
    count = model.config.num_hidden_layers
    for module in model.base_model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise UserError(f"cannot find the {count} transformer layers of "
                    f"{type(model).__name__}: pass -P freeze_layers=0")


def freeze(model, embeddings: bool, layers: int) -> None:
    """Fix the word-embedding matrix (`embeddings`) and, with `layers` > 0, every embedding
    weight and the lowest `layers` transformer blocks; everything else trains."""
    model.get_input_embeddings().weight.requires_grad_(not embeddings)
    if layers <= 0:
        return
    blocks = encoder_layers(model)
    if layers > len(blocks):
        raise UserError(f"freeze_layers={layers} but the model has {len(blocks)} layers: pass "
                        f"-P freeze_layers={len(blocks)} or fewer")
    # Position and token-type embeddings and their LayerNorm too: were they to train, the
    # backward pass would run through every frozen block to reach them. An architecture
    # without BERT's `embeddings` module fixes its input embeddings alone (still correct,
    # only less of the backward pass is skipped).
    model.get_input_embeddings().weight.requires_grad_(False)
    embeddings = getattr(model.base_model, "embeddings", None)
    for module in (*([embeddings] if embeddings is not None else []), *blocks[:layers]):
        for p in module.parameters():
            p.requires_grad_(False)
