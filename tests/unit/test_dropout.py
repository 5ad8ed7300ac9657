"""Dropout masks from 16-bit lanes: the right probability, torch's seed, SDPA's attention, and
the model given back as loaded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import texts_frame
from torch import nn

from agnews.config import TrainConfig
from agnews.data.tokenized import encode
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.training import dropout
from agnews.training.dropout import (
    ATTENTION,
    MaskDropout,
    dropout_masks,
    keep_mask,
    mask_dropout,
    measured_masks,
)
from agnews.training.loop import fit


@pytest.fixture
def lanes_win(monkeypatch):
    """This machine's answer, whatever its timing: the lanes are faster."""
    monkeypatch.setattr(dropout, "measured_masks", lambda: (True, "16-bit lanes: by the test"))


@pytest.fixture
def batch(tiny_model):
    """Two texts of different lengths: the shorter one padded."""
    tokenizer = load_tokenizer(str(tiny_model))
    return dict(tokenizer(["a short one", "a much longer text with many more words in it"],
                          padding=True, return_tensors="pt"))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_masks_drop_each_element_with_probability_p_in_every_lane(p):
    torch.manual_seed(0)
    keep = keep_mask((250_000, 4), p)
    dropped = round(p * 65536) / 65536
    # each of the four 16-bit lanes of a draw, and all of them: within 5 standard errors
    for share, n in [((~keep).float().mean(), keep.numel())] + [
            ((~keep[:, lane]).float().mean(), len(keep)) for lane in range(4)]:
        assert abs(share.item() - dropped) < 5 * np.sqrt(dropped * (1 - dropped) / n)
    out = mask_dropout(torch.ones(1_000_000), p)
    assert out.unique().tolist() == [0.0, pytest.approx(1 / (1 - dropped))]
    assert abs(out.mean().item() - 1) < 5 * np.sqrt(dropped / (1 - dropped) / out.numel())


def test_masks_follow_torchs_seed():
    torch.manual_seed(5)
    first = keep_mask((64, 12, 32, 32), 0.1)
    torch.manual_seed(5)
    assert torch.equal(keep_mask((64, 12, 32, 32), 0.1), first)
    assert not torch.equal(keep_mask((64, 12, 32, 32), 0.1), first)  # the stream moved on


def test_the_attention_is_sdpas_where_nothing_drops_out(tiny_model, batch):
    model = load_classifier(str(tiny_model)).eval()
    with torch.no_grad():
        sdpa = model(**batch).logits
        dropout.register()
        model.set_attn_implementation(ATTENTION)
        assert torch.equal(model(**batch).logits, sdpa)


def test_in_training_attention_drops_softmax_weights_and_skips_padding(tiny_model, batch,
                                                                       monkeypatch):
    """Against transformers' eager attention with the same masks: padding and dropout alike."""
    model = load_classifier(str(tiny_model)).train()
    for module in model.modules():  # only the attention's dropout, so the two differ in it alone
        if isinstance(module, nn.Dropout) and not name_is_attention(model, module):
            module.p = 0.0
    dropout.register()
    model.set_attn_implementation(ATTENTION)
    torch.manual_seed(3)
    ours = model(**batch).logits
    model.set_attn_implementation("eager")
    monkeypatch.setattr(nn.functional, "dropout", lambda x, p=0.5, training=True, inplace=False:
                        mask_dropout(x, p) if training and p > 0 else x)
    torch.manual_seed(3)
    assert torch.allclose(model(**batch).logits, ours, atol=1e-6)
    torch.manual_seed(4)
    assert not torch.allclose(model(**batch).logits, ours, atol=1e-6)  # the masks mattered


def name_is_attention(model, module) -> bool:
    return any(module is layer.attention.self.dropout for layer in model.bert.encoder.layer)


def test_training_inside_gets_the_lanes_and_the_model_comes_back_as_loaded(tiny_model,
                                                                          lanes_win):
    model = load_classifier(str(tiny_model))
    originals = [m for m in model.modules() if type(m) is nn.Dropout]
    with pytest.raises(RuntimeError, match="a step failed"):
        with dropout_masks(model) as reason:
            assert reason == "16-bit lanes: by the test"
            assert model.config._attn_implementation == ATTENTION
            assert not any(type(m) is nn.Dropout for m in model.modules())
            assert sum(isinstance(m, MaskDropout) for m in model.modules()) == len(originals)
            raise RuntimeError("a step failed")
    assert model.config._attn_implementation == "sdpa"
    assert [m for m in model.modules() if isinstance(m, nn.Dropout)] == originals
    assert not any(isinstance(m, MaskDropout) for m in model.modules())


def test_torchs_masks_where_the_lanes_do_not_win(tiny_model, monkeypatch):
    monkeypatch.setattr(dropout, "measured_masks", lambda: (False, "torch: by the test"))
    model = load_classifier(str(tiny_model))
    with dropout_masks(model) as reason:
        assert reason == "torch: by the test"
        assert model.config._attn_implementation == "sdpa"
        assert not any(isinstance(m, MaskDropout) for m in model.modules())


@pytest.mark.parametrize("torch_s, lanes_s, lanes", [(1.0, 0.5, True), (1.0, 0.9, False),
                                                     (0.3, 1.0, False)])
def test_the_faster_masks_are_measured_once_then_remembered(tmp_path, monkeypatch, torch_s,
                                                            lanes_s, lanes):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(dropout, "time_masks",
                        lambda: calls.append(1) or {"torch": torch_s, "lanes": lanes_s})
    first, second = measured_masks(), measured_masks()
    assert first[0] is second[0] is lanes and len(calls) == 1
    assert "probed on" in first[1] and "remembered from a probe" in second[1]
    stored = json.loads((tmp_path / "agnews-mlflow" / "dropout.json").read_text())
    assert list(stored.values()) == [{"torch": torch_s, "lanes": lanes_s}]


def test_the_real_timing_covers_both_and_leaves_the_random_stream_alone():
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    seconds = dropout.time_masks(rounds=1)
    assert torch.equal(torch.rand(3), expected)
    assert set(seconds) == {"torch", "lanes"} and all(s > 0 for s in seconds.values())


def test_a_fit_with_the_lanes_repeats_itself_and_says_so(tiny_model, lanes_win):
    tokenizer = load_tokenizer(str(tiny_model))
    frame = encode(tokenizer, texts_frame([i % 4 for i in range(32)]), 32)
    cfg = TrainConfig(model=str(tiny_model), epochs=1, train_batch_size=8, learning_rate=1e-3)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)  # the classifier head's initialisation
        model = load_classifier(str(tiny_model))
        result = fit(model, frame, frame, cfg, tokenizer.pad_token_id)
        assert result.dropout_masks == "16-bit lanes: by the test"
        assert model.config._attn_implementation == "sdpa"
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_causal_attention_is_left_to_sdpa_whole():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = nn.Module()
    module.is_causal = True
    q, k, v = (torch.randn(2, 4, 8, 16) for _ in range(3))
    torch.manual_seed(1)
    ours = dropout.attention(module, q, k, v, None, dropout=0.1)[0]
    torch.manual_seed(1)
    assert torch.equal(ours, sdpa_attention_forward(module, q, k, v, None, dropout=0.1)[0])
