"""A BERT classifier's last layer computed for the first position alone
(`agnews.model.first_token`): the same logits, loss and gradients as the whole model, the
same weights saved, a smaller exported graph, and every other kind of model left whole."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from agnews.model.first_token import every_token, first_token_only, last_layer
from agnews.model.pretrained import load_classifier

TEXTS = ["stocks fall", "the match went to extra time after a late goal",
         "a new chip", "markets rally as oil prices ease for a third day running"]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all()  # padded rows: the mask must reach the layer
    return tiny_model, batch


def whole_and_trimmed(folder):
    """The same classifier twice: as transformers computes it, and with its last layer
    computing the first position alone."""
    torch.manual_seed(1)
    whole = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4).eval()
    trimmed = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4).eval()
    trimmed.load_state_dict(whole.state_dict())
    assert first_token_only(trimmed)
    return whole, trimmed


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_logits_are_the_whole_models(tiny, attention):
    folder, batch = tiny
    whole, trimmed = whole_and_trimmed(folder)
    for model in (whole, trimmed):
        model.set_attn_implementation(attention)
    with torch.inference_mode():
        expected = whole(**batch).logits
        got = trimmed(**batch).logits
        # what the pooler read: one position instead of all of them
        assert trimmed.bert(**batch).last_hidden_state.shape[1] == 1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_training_under_cpu_autocast_runs_the_first_positions_products_unmixed(tiny):
    """In bf16 each new row count (training's micro-batches) would get oneDNN kernels kept for
    the process's life, so training runs the first position's products in fp32, the keys and
    values over every token in bf16; scoring, whose batches keep one row count, stays in
    bf16 throughout."""
    folder, batch = tiny
    whole, trimmed = whole_and_trimmed(folder)
    layer = trimmed.bert.encoder.layer[-1]
    seen = {}
    for name in ("attention.self.query", "attention.self.key", "attention.output.dense",
                 "intermediate.dense", "output.dense"):
        layer.get_submodule(name).register_forward_hook(
            lambda module, args, out, name=name: seen.__setitem__(name, out.dtype))
    bf16, fp32 = torch.bfloat16, torch.float32
    with torch.autocast("cpu", dtype=bf16):
        with torch.inference_mode():
            expected, got = whole(**batch).logits, trimmed(**batch).logits
        assert set(seen.values()) == {bf16}
        torch.testing.assert_close(got.float(), expected.float(), rtol=0.02, atol=0.02)
        trimmed.train()
        trimmed(**batch, labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    assert seen == {"attention.self.query": fp32, "attention.self.key": bf16,
                    "attention.output.dense": fp32, "intermediate.dense": fp32,
                    "output.dense": fp32}
    assert layer.intermediate.dense.weight.grad.abs().sum() > 0
    assert layer.attention.self.key.weight.grad.abs().sum() > 0


def test_the_loss_and_every_gradient_are_the_whole_models(tiny):
    folder, batch = tiny
    labels = torch.tensor([0, 1, 2, 3])
    grads = []
    for model in whole_and_trimmed(folder):  # eval mode: no dropout, so both are exact
        loss = model(**batch, labels=labels).loss
        loss.backward()
        grads.append((loss.item(), {n: p.grad for n, p in model.named_parameters()}))
    (loss, expected), (got_loss, got) = grads
    assert got_loss == pytest.approx(loss, rel=1e-6)
    assert got.keys() == expected.keys()
    for name, grad in expected.items():
        # a key's bias moves every score of a query alike, which softmax ignores: its true
        # gradient is zero and both carry only rounding there
        scale = max(grad.abs().max().item(), 1e-6)
        torch.testing.assert_close(got[name] / scale, grad / scale, rtol=0, atol=1e-4,
                                   msg=name)


def test_it_trains_with_dropout_on(tiny):
    folder, batch = tiny
    _, trimmed = whole_and_trimmed(folder)
    trimmed.train()
    loss = trimmed(**batch, labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert trimmed.bert.encoder.layer[-1].output.dense.weight.grad.abs().sum() > 0


def test_the_weights_saved_are_the_models_and_load_whole(tiny, tmp_path):
    folder, batch = tiny
    whole, trimmed = whole_and_trimmed(folder)
    assert list(trimmed.state_dict()) == list(whole.state_dict())
    trimmed.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert last_layer(again) is not None and "forward" not in vars(last_layer(again))
    with torch.inference_mode():
        torch.testing.assert_close(again(**batch).logits, whole(**batch).logits)


def test_the_exported_graph_is_smaller_and_scores_alike(tiny, tmp_path):
    import onnx

    from agnews.model.onnx_export import export_onnx
    from agnews.model.runtimes import onnx_session

    folder, batch = tiny
    whole, trimmed = whole_and_trimmed(folder)
    export_onnx(whole, tmp_path / "whole.onnx")
    export_onnx(trimmed, tmp_path / "trimmed.onnx")
    inputs = {k: batch[k].numpy() for k in ("input_ids", "attention_mask")}
    logits = [onnx_session(tmp_path / f"{name}.onnx").run(["logits"], inputs)[0]
              for name in ("whole", "trimmed")]
    np.testing.assert_allclose(logits[1], logits[0], rtol=1e-5, atol=1e-6)

    def flops_nodes(name: str) -> int:
        graph = onnx.load(str(tmp_path / f"{name}.onnx")).graph
        return sum(node.op_type in ("MatMul", "Gemm") for node in graph.node)

    # the same products (the first position's are still products), but on one row each:
    # the graph differs in the slices that pick that row
    sliced = [sum(n.op_type in ("Slice", "Gather") for n in
                  onnx.load(str(tmp_path / f"{name}.onnx")).graph.node)
              for name in ("whole", "trimmed")]
    assert flops_nodes("trimmed") == flops_nodes("whole")
    assert sliced[1] > sliced[0]


def test_a_mask_it_cannot_read_gets_the_layer_whole(tiny, monkeypatch):
    folder, batch = tiny
    _, trimmed = whole_and_trimmed(folder)
    layer = last_layer(trimmed)
    calls = []

    def own_forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        calls.append(attention_mask)
        return hidden_states

    # BertLayer's own forward, seen from the layer whose instance forward is replaced
    monkeypatch.setattr(type(layer), "forward", own_forward)
    hidden = torch.randn(4, batch["input_ids"].shape[1], trimmed.config.hidden_size)
    keys = batch["attention_mask"].bool()  # one row a text, as flash attention takes it
    with torch.inference_mode():
        assert layer(hidden, keys) is hidden and calls == [keys]  # handed on whole
        four_d = keys[:, None, None, :].expand(-1, 1, hidden.shape[1], -1)
        assert layer(hidden, four_d).shape[1] == 1 and len(calls) == 1  # SDPA's: trimmed


def test_calling_it_twice_changes_nothing_and_every_token_undoes_it(tiny):
    folder, batch = tiny
    whole, trimmed = whole_and_trimmed(folder)
    forward = vars(last_layer(trimmed))["forward"]
    assert first_token_only(trimmed)
    assert vars(last_layer(trimmed))["forward"] is forward
    every_token(trimmed)
    assert "forward" not in vars(last_layer(trimmed))
    with torch.inference_mode():
        assert trimmed.bert(**batch).last_hidden_state.shape[1] == batch["input_ids"].shape[1]


def test_other_models_are_left_whole():
    from transformers import BertConfig, BertModel, DistilBertConfig

    distil = AutoModelForSequenceClassification.from_config(DistilBertConfig(
        vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32, num_labels=4))
    assert not first_token_only(distil)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32)
    assert not first_token_only(BertModel(config))  # no head reading the first position
    decoder = AutoModelForSequenceClassification.from_config(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, is_decoder=True, num_labels=4))
    assert not first_token_only(decoder)  # a causal layer's first position sees only itself
    assert "forward" not in vars(decoder.bert.encoder.layer[-1])


def test_the_project_loads_classifiers_trimmed(tiny):
    from agnews.model.runtimes import open_torch

    folder, _ = tiny
    model = load_classifier(str(folder))
    assert "forward" in vars(last_layer(model))
    plain = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4)
    clf = open_torch(plain, AutoTokenizer.from_pretrained(folder), 32, "fp32")
    assert "forward" in vars(last_layer(clf.runtime.model))
