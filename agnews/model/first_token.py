"""A BERT classifier's last layer, computed for the one position its head reads.

`BertForSequenceClassification` classifies from its pooler, which reads the last layer's
output at the first position ([CLS]) and nothing else; the last layer's outputs at every other
position are computed and thrown away: the query, attention-output and feed-forward products
and their layer norms for all tokens but one, most of a layer's work. `first_token_only` makes
the last layer attend from the first position alone, its keys and values still taken from every
token, so the logits, the loss and every gradient are those of the whole model (to float
rounding: tests/unit/test_first_token.py) for less work, in training and in scoring
(docs/performance.md, "The last layer's first token"). transformers computes every position,
and in an exported graph the other positions are rows of the same tensors as the first, which
ONNX Runtime's optimizer (it removes unused nodes, not unused rows) cannot take away; hence by
hand.

It replaces the forward of that one layer object, nothing else: the weights, their names and
what `save_pretrained` writes are those of the model as loaded, an ONNX export traces the
smaller graph, and a model of any other kind (or a BERT with a decoder's or cross-attention's
layers) is left whole.
"""
from __future__ import annotations

import contextlib
import sys
import types

import torch

CLASSIFIER = "BertForSequenceClassification"
LAYER = "BertLayer"


def last_layer(model) -> torch.nn.Module | None:
    """The last encoder layer of a BERT sequence classifier whose head reads the first
    position alone, or None where `model` is anything else. By class name, so a model of
    another kind does not import BERT's module to be told apart."""
    if type(model).__name__ != CLASSIFIER:
        return None
    config = model.config
    if config.is_decoder or getattr(config, "add_cross_attention", False) \
            or getattr(model.bert, "pooler", None) is None:
        return None
    layer = model.bert.encoder.layer[-1]
    return layer if type(layer).__name__ == LAYER else None


def first_token_forward(self, hidden_states: torch.Tensor, attention_mask=None, *args,
                        **kwargs) -> torch.Tensor:
    """`BertLayer.forward` for the first position only: the output has one position, which
    `BertPooler` (it reads position 0) takes as it would the first of all of them. A mask
    other than eager's and SDPA's (none, or one row per query: batch, 1, queries, keys), such
    as flash attention's or flex attention's, gets the layer whole: its query rows are not
    known here."""
    if attention_mask is not None and not (isinstance(attention_mask, torch.Tensor)
                                           and attention_mask.dim() == 4):
        return type(self).forward(self, hidden_states, attention_mask, *args, **kwargs)
    attention = self.attention.self
    first = hidden_states[:, :1]
    batch, heads, size = hidden_states.shape[0], attention.num_attention_heads, \
        attention.attention_head_size
    key = attention.key(hidden_states).view(batch, -1, heads, size).transpose(1, 2)
    value = attention.value(hidden_states).view(batch, -1, heads, size).transpose(1, 2)
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :1]  # the first query's row (batch, 1, 1, keys)
    # The attention function the model is set to now (the export switches it to eager,
    # training's dropout to its own), as BertSelfAttention looks it up.
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager = sys.modules[type(self).__module__].eager_attention_forward
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation,
                                                      eager)
    with products_unmixed(hidden_states):
        query = attention.query(first).view(batch, 1, heads, size).transpose(1, 2)
        output, _ = interface(attention, query.to(key.dtype), key, value, attention_mask,
                              dropout=attention.dropout.p if attention.training else 0.0,
                              scaling=attention.scaling)
        output = self.attention.output(output.reshape(batch, 1, -1).to(first.dtype), first)
        return self.feed_forward_chunk(output)


def products_unmixed(hidden_states: torch.Tensor):
    """While training under a CPU's autocast, the first position's products run in the
    weights' own precision. In bf16 every row count the layer meets gets its own oneDNN
    kernels, forward and backward, which oneDNN keeps for the process's life, and training's
    micro-batches bring a new row count every few steps; at one position a row the products
    are a small share of a step either way. Scoring's batches all have the same rows but the
    last, so it keeps bf16's speed (docs/performance.md, "Where train's peak was")."""
    if hidden_states.device.type == "cpu" and torch.is_autocast_enabled("cpu") \
            and torch.is_grad_enabled():
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()


def first_token_only(model) -> bool:
    """Make `model`'s last layer compute the first position alone, where the model is a BERT
    sequence classifier (`last_layer`); whether it does now. Calling it again changes
    nothing."""
    layer = last_layer(model)
    if layer is None:
        return False
    if "forward" not in vars(layer):
        layer.forward = types.MethodType(first_token_forward, layer)
    return True


def every_token(model) -> None:
    """Give `model`'s last layer back its own forward (benchmarks compare the two)."""
    layer = last_layer(model)
    if layer is not None:
        vars(layer).pop("forward", None)


__all__ = ["every_token", "first_token_only", "last_layer"]
