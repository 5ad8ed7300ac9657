"""tokenize and train on a tiny random BERT: truncation, padding, learning, determinism."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import texts_frame

from steps.config import TrainConfig
from steps.errors import UserError
from steps.modeling import batches, load_classifier, load_tokenizer, pad_batch, predict_logits
from steps.tokenize import encode, length_summary, token_lengths
from steps.train import fit


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(str(tiny_model))


def test_encode_truncates_to_max_length_and_keeps_labels(tokenizer):
    df = pd.DataFrame({"text": ["short text", "word " * 50], "label": [1, 3]})
    out = encode(tokenizer, df, max_length=16)
    assert [len(ids) for ids in out["input_ids"]] == [4, 16]  # [CLS] short text [SEP]
    assert out["input_ids"][1][-1] == tokenizer.sep_token_id
    assert out["label"].tolist() == [1, 3]
    lengths = token_lengths(tokenizer, df["text"].tolist())
    assert lengths.tolist() == [4, 52]
    summary = length_summary(lengths, 16)
    assert summary["truncated_share"] == 0.5 and summary["tokens_mean"] == 28


def test_pad_batch_pads_to_the_longest_and_masks_padding():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_batches_follow_the_given_order():
    seen = [idx.tolist() for idx, _, _ in batches([[1]] * 5, 2, 0, np.array([4, 3, 2, 1, 0]))]
    assert seen == [[4, 3], [2, 1], [0]]


def test_predictions_do_not_depend_on_batch_composition(tiny_model, tokenizer):
    model = load_classifier(str(tiny_model))
    seqs = encode(tokenizer, texts_frame([0, 1, 2, 3, 0, 1]), 32)["input_ids"].tolist()
    one = predict_logits(model, seqs, 1, tokenizer.pad_token_id)
    many = predict_logits(model, seqs, 4, tokenizer.pad_token_id)
    np.testing.assert_allclose(one, many, atol=1e-5)


def learnable_frames(tokenizer):
    """Each class gets its own vocabulary, so even a tiny random model can learn it."""
    words = {0: "election minister war", 1: "match goal season", 2: "shares profit market",
             3: "software chip internet"}
    rows = [(f"{words[c]} story {i}", c) for i in range(12) for c in range(4)]
    df = pd.DataFrame(rows, columns=["text", "label"])
    return encode(tokenizer, df[:40], 32), encode(tokenizer, df[40:], 32)


def test_fit_lowers_the_loss_and_logs_every_metric_per_epoch(tiny_model, tokenizer):
    train, val = learnable_frames(tokenizer)
    seen = []
    cfg = TrainConfig(model=str(tiny_model), epochs=6, train_batch_size=8, learning_rate=1e-2)
    history = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                  on_epoch=lambda epoch, row: seen.append(epoch))
    assert seen == [1, 2, 3, 4, 5, 6]
    for split in ("train", "val"):
        for metric in ("loss", "accuracy", "f1", "precision", "recall"):
            assert all(f"{split}_{metric}" in row for row in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.05
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_same_seed_gives_identical_training(tiny_model, tokenizer):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=1, train_batch_size=8, learning_rate=3e-3)
    runs = []
    for _ in range(2):
        torch.manual_seed(cfg.seed)
        runs.append(fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id))
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert runs[0][0][key] == pytest.approx(runs[1][0][key], abs=1e-6)


def test_classifier_gets_named_labels(tiny_model):
    model = load_classifier(str(tiny_model))
    assert model.config.id2label == {0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"}


@pytest.mark.parametrize("model, message", [
    ("./no/such/model", "does not exist"),
    ("/definitely/not/here", "does not exist"),
])
def test_missing_model_folder_is_named(model, message):
    with pytest.raises(UserError, match=message):
        load_classifier(model)


def test_folder_without_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(UserError, match="holds no usable model"):
        load_classifier(str(tmp_path))


def test_hub_model_id_offline_fails_fast_saying_pass_a_folder(monkeypatch):
    import time

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(UserError, match="pass a local folder"):
        load_tokenizer("no-such-owner/no-such-model-xyz")
    assert time.monotonic() - start < 10
