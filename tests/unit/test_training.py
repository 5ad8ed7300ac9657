"""tokenize and train on a tiny random BERT: truncation, padding, learning, determinism."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from support import texts_frame

from agnews.config import TrainConfig
from agnews.data.tokenized import encode, length_summary, token_lengths
from agnews.errors import UserError
from agnews.model.batching import (
    batches,
    micro_batch_cap,
    micro_batches,
    pad_batch,
    predict_logits,
)
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.training.callbacks import Callback, Hooks, ProgressBar
from agnews.training.distributed import Processes
from agnews.training.loop import fit, log_interval, optimisation, score


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
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, multiple=1)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pad_batch_rounds_the_width_up_to_the_multiple():
    ids, mask = pad_batch([[5] * 17, [8]], pad_id=0)  # default multiple 16
    assert ids.shape == (2, 32) and mask.shape == (2, 32)
    assert mask.sum(axis=1).tolist() == [17, 1]
    assert pad_batch([[5] * 16], pad_id=0)[0].shape == (1, 16)  # an exact multiple stays


@pytest.mark.parametrize("rows, width, max_tokens, expected", [
    (16, 128, 1024, [(0, 8), (8, 16)]),   # 2,048 tokens: two halves
    (16, 48, 1024, [(0, 16)]),            # 768 tokens: whole
    (16, 64, 768, [(0, 8), (8, 16)]),     # at most 12 rows a part: balanced 8 + 8
    (10, 128, 512, [(0, 4), (4, 8), (8, 10)]),  # 4 rows a part at most: 3 parts
    (5, 128, 256, [(0, 2), (2, 4), (4, 5)]),
    (3, 512, 100, [(0, 1), (1, 2), (2, 3)]),  # never fewer than one row
    (16, 128, 0, [(0, 16)]),              # 0 = never split
])
def test_micro_batches_cap_tokens_per_forward_pass(rows, width, max_tokens, expected):
    parts = micro_batches(rows, width, max_tokens)
    assert [(p.start, min(p.stop, rows)) for p in parts] == expected


@pytest.mark.parametrize("setting, device, cap", [
    ("auto", "cpu", 512), ("auto", "cuda", 0),   # auto splits on a CPU only
    ("256", "cuda", 256), ("0", "cpu", 0), (64, "cpu", 64),  # a count holds everywhere
])
def test_micro_batch_cap_resolves_auto_by_device(setting, device, cap):
    assert micro_batch_cap(setting, device) == cap


def test_training_on_the_cpu_splits_at_the_auto_cap(tiny_model):
    model = load_classifier(str(tiny_model))
    assert optimisation(model, TrainConfig(precision="fp32"), 100,
                        Processes()).micro_batch_tokens == 512


def test_split_batches_give_the_same_update_as_whole_ones(tiny_model, tokenizer):
    """Micro-batching is gradient accumulation: the weights after training must not change."""
    train, val = learnable_frames(tokenizer)
    weights = []
    for max_tokens in (0, 16):  # 16 tokens: every batch is split into single rows
        torch.manual_seed(0)
        model = load_classifier(str(tiny_model))
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
        for module in model.modules():  # dropout would draw different masks per split
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        fit(model, train, val, TrainConfig(epochs=1, train_batch_size=8, precision="fp32",
                                           micro_batch_tokens=str(max_tokens)),
            tokenizer.pad_token_id)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-5, rtol=1e-4)


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
                  [Hooks(on_epoch=lambda epoch, row: seen.append(epoch))]).history
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
        runs.append(fit(load_classifier(str(tiny_model)), train, val, cfg,
                        tokenizer.pad_token_id).history)
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert runs[0][0][key] == pytest.approx(runs[1][0][key], abs=1e-6)


@pytest.mark.parametrize("every, epochs, steps_per_epoch, expected", [
    (7, 2, 250, 7), (0, 2, 250, 12), (0, 1, 10, 1), (0, 3, 63, 4)])
def test_log_interval(every, epochs, steps_per_epoch, expected):
    cfg = TrainConfig(log_every_steps=every, epochs=epochs)
    assert log_interval(cfg, steps_per_epoch) == expected


def test_default_run_yields_20_to_50_live_points():
    steps = TrainConfig().epochs * -(-1000 // TrainConfig().train_batch_size)
    assert 20 <= steps // log_interval(TrainConfig(), steps // TrainConfig().epochs) <= 50


class Bar:
    def __init__(self):
        self.samples, self.postfix = 0, {}

    def update(self, n):
        self.samples += n

    def set_postfix(self, refresh=False, **kw):
        self.postfix = kw

    def write(self, line):
        self.lines = [*getattr(self, "lines", []), line]


def test_live_step_points_learning_rate_and_progress(tiny_model, tokenizer):
    train, val = learnable_frames(tokenizer)  # 40 rows: 5 steps of 8 per epoch
    points, bar = [], Bar()
    cfg = TrainConfig(model=str(tiny_model), epochs=2, train_batch_size=8, learning_rate=1e-3,
                      log_every_steps=2)
    result = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                 [Hooks(on_step=lambda step, point: points.append((step, point))),
                  ProgressBar(bar, cfg.epochs)])
    assert [s for s, _ in points] == [2, 4, 6, 8, 10]
    assert [p["epoch"] for _, p in points] == [0.4, 0.8, 1.2, 1.6, 2.0]
    rates = [p["learning_rate"] for _, p in points]
    assert rates[0] == pytest.approx(1e-3 * (1 - 1 / 10)) and rates == sorted(rates, reverse=True)
    assert result.steps[0]["step"] == 2 and "train_loss_step" in result.steps[0]
    assert bar.samples == 80 and bar.postfix["epoch"] == "2/2"


def test_max_steps_stops_mid_epoch_with_the_rate_decayed_by_then(tiny_model, tokenizer):
    train, val = learnable_frames(tokenizer)  # 40 rows: 5 steps of 8 per epoch
    cfg = TrainConfig(model=str(tiny_model), epochs=3, train_batch_size=8, learning_rate=1e-3,
                      log_every_steps=1, max_steps=7)
    bar = Bar()
    result = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                 [ProgressBar(bar, cfg.epochs)])
    assert [p["step"] for p in result.steps] == list(range(1, 8))
    assert len(result.history) == 2 and bar.samples == 56  # epoch 2 stopped after 2 steps
    assert result.steps[-1]["learning_rate"] == pytest.approx(1e-3 / 7)  # linear to 0 at 7
    assert result.history[1]["train_samples_per_second"] == pytest.approx(
        16 / result.history[1]["epoch_seconds"])
    with pytest.raises(UserError, match="max_steps=-1 is negative"):
        TrainConfig(max_steps=-1)


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_embeddings_keeps_the_word_embeddings_and_trains_the_rest(tiny_model, tokenizer,
                                                                          freeze):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=1, train_batch_size=8, learning_rate=1e-2,
                      freeze_embeddings=freeze, precision="fp32")
    model = load_classifier(str(tiny_model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, train, val, cfg, tokenizer.pad_token_id)
    after = model.state_dict()
    words = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(before[words], after[words]) == freeze
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["bert.embeddings.position_embeddings.weight"],
                           after["bert.embeddings.position_embeddings.weight"])


@pytest.mark.parametrize("select_best", [True, False])
def test_select_best_keeps_an_earlier_epoch_only_if_it_is_significantly_more_accurate(
        tiny_model, tokenizer, select_best):
    train, val = learnable_frames(tokenizer)
    # Validation rows are the training texts labelled as the next class: the more the model
    # learns, the fewer it gets "right", so an early epoch is far more accurate than the last
    # on 40 rows and restoring an earlier epoch's weights is exercised.
    val = train.assign(label=(train["label"] + 1) % 4)
    cfg = TrainConfig(model=str(tiny_model), epochs=4, train_batch_size=8, learning_rate=1e-2,
                      select_best=select_best, precision="fp32")
    torch.manual_seed(0)  # the classifier head's initialisation: one that learns here
    model = load_classifier(str(tiny_model))
    result = fit(model, train, val, cfg, tokenizer.pad_token_id)
    accuracy = [row["val_accuracy"] for row in result.history]
    if select_best:
        kept = result.best_epoch
        assert kept < 4 and accuracy[kept - 1] == max(accuracy[:3]) > accuracy[3]
        assert result.selection_p < 0.05 / 3
    else:
        kept = 4
        assert result.best_epoch == 4 and result.selection_p == 1.0
    now = score(model, val, 8, tokenizer.pad_token_id)  # the weights the model holds now
    assert now["accuracy"] == pytest.approx(result.history[kept - 1]["val_accuracy"])
    assert now["loss"] == pytest.approx(result.history[kept - 1]["val_loss"], abs=1e-6)


def test_select_best_keeps_the_last_epoch_when_no_earlier_one_is_better(tiny_model,
                                                                        tokenizer):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=3, train_batch_size=8, learning_rate=1e-2,
                      precision="fp32")
    torch.manual_seed(0)
    result = fit(load_classifier(str(tiny_model)), train, train, cfg, tokenizer.pad_token_id)
    accuracy = [row["val_accuracy"] for row in result.history]
    assert accuracy[-1] >= max(accuracy[:-1]) and result.best_epoch == 3


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


def test_a_callback_stops_training_after_an_epoch_and_the_kept_weights_are_of_those_run(
        tiny_model, tokenizer):
    """What a sweep's pruner does: training ends after the epoch a callback returns True."""
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=4, train_batch_size=8, learning_rate=1e-2)

    class StopAfterTwo(Callback):
        def on_epoch(self, epoch, row):
            return epoch == 2

    result = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                 [StopAfterTwo()])
    assert result.stopped_at == 2 and len(result.history) == 2
    assert result.best_epoch in (1, 2)


class Killed(Exception):
    pass


def test_a_killed_training_resumes_from_its_checkpoint_and_ends_identical(tiny_model, tokenizer,
                                                                          tmp_path):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=3, train_batch_size=8, learning_rate=1e-2,
                      log_every_steps=2)
    torch.manual_seed(cfg.seed)
    straight = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id)

    checkpoint = tmp_path / "checkpoint.pt"

    def die_after_epoch_2(epoch, row):
        if epoch == 2:
            raise Killed  # the checkpoint of epoch 2 is already on disk

    torch.manual_seed(cfg.seed)
    with pytest.raises(Killed):
        fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
            [Hooks(on_epoch=die_after_epoch_2)], checkpoint=checkpoint)
    assert checkpoint.is_file()

    epochs, steps, bar = [], [], Bar()
    torch.manual_seed(cfg.seed)
    resumed = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                  [Hooks(on_epoch=lambda e, row: epochs.append(e),
                         on_step=lambda s, p: steps.append(s)), ProgressBar(bar, cfg.epochs)],
                  checkpoint=checkpoint)
    assert epochs == [1, 2, 3]  # epochs 1-2 replayed from the checkpoint, 3 trained
    assert steps == [2, 4, 6, 8, 10, 12, 14]  # 5 steps per epoch, a point every 2: no gap
    assert bar.samples == 3 * 40
    for a, b in zip(straight.history, resumed.history, strict=True):
        for key in ("train_loss", "val_loss", "val_f1", "train_running_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    assert resumed.best_epoch == straight.best_epoch


@pytest.mark.parametrize("content", [b"", b"half a checkpoint \x00\x01",
                                     "a torch file of something else"])
def test_an_unreadable_checkpoint_is_set_aside_and_training_starts_over(
        tiny_model, tokenizer, tmp_path, caplog, content):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=2, train_batch_size=8, learning_rate=1e-2)
    torch.manual_seed(cfg.seed)
    straight = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id)

    checkpoint = tmp_path / "checkpoint.pt"
    if isinstance(content, bytes):
        checkpoint.write_bytes(content)
    else:
        torch.save({"weights": torch.zeros(2)}, checkpoint)
    original = checkpoint.read_bytes()
    epochs = []
    torch.manual_seed(cfg.seed)
    with caplog.at_level("WARNING"):
        again = fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id,
                    [Hooks(on_epoch=lambda e, row: epochs.append(e))], checkpoint=checkpoint)
    assert epochs == [1, 2]  # trained from the start, nothing replayed
    for a, b in zip(straight.history, again.history, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)
    aside = list(tmp_path.glob("checkpoint.pt.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == original  # kept for a post-mortem
    assert "cannot be read" in caplog.text and "training starts over" in caplog.text
    assert checkpoint.is_file()  # this run's own checkpoint, written after each epoch


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_runs_in_fp32_and_bf16(tiny_model, tokenizer, precision):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=1, train_batch_size=8, learning_rate=1e-3,
                      precision=precision)
    model = load_classifier(str(tiny_model))
    result = fit(model, train, val, cfg, tokenizer.pad_token_id)
    assert (result.precision.train, result.precision.score) == (precision, precision)
    assert np.isfinite(result.history[0]["train_running_loss"])
    assert next(model.parameters()).dtype == torch.float32  # weights stay fp32 to save and serve
    seqs = val["input_ids"].tolist()
    fp32 = predict_logits(model, seqs, 4, tokenizer.pad_token_id, "fp32")
    bf16 = predict_logits(model, seqs, 4, tokenizer.pad_token_id, "bf16")
    np.testing.assert_allclose(bf16, fp32, atol=0.05)  # bf16 keeps ~3 significant digits


def test_length_grouped_batches_cover_every_row_once_with_similar_lengths():
    from agnews.model.batching import length_grouped_order

    lengths = np.random.default_rng(0).integers(5, 200, size=1000)
    order = length_grouped_order(lengths, 16, np.random.default_rng(1), group=10)
    assert sorted(order.tolist()) == list(range(1000))
    batches_ = [lengths[order[i:i + 16]] for i in range(0, 1000, 16)]
    padded = sum(b.max() * len(b) for b in batches_)
    random_padded = sum(lengths[i:i + 16].max() * 16 for i in range(0, 1000, 16))
    assert padded < 0.7 * random_padded  # far less padding than random batches


def test_freeze_layers_keeps_the_lowest_layers_and_every_embedding(tiny_model, tokenizer):
    train, val = learnable_frames(tokenizer)
    cfg = TrainConfig(model=str(tiny_model), epochs=1, train_batch_size=8, learning_rate=1e-2,
                      freeze_layers=1, precision="fp32")
    model = load_classifier(str(tiny_model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, train, val, cfg, tokenizer.pad_token_id)
    after = model.state_dict()
    unchanged = {k for k in before if torch.equal(before[k], after[k])}
    assert {k for k in before if k.startswith(("bert.embeddings.", "bert.encoder.layer.0."))} \
        <= unchanged
    assert "bert.encoder.layer.1.output.dense.weight" not in unchanged
    assert "classifier.weight" not in unchanged
    cfg = TrainConfig(model=str(tiny_model), epochs=1, freeze_layers=3, precision="fp32")
    with pytest.raises(UserError, match="freeze_layers=3 but the model has 2 layers: pass "
                                        "-P freeze_layers=2 or fewer"):
        fit(load_classifier(str(tiny_model)), train, val, cfg, tokenizer.pad_token_id)
    with pytest.raises(UserError, match="freeze_layers=-1 is negative"):
        TrainConfig(freeze_layers=-1)


def test_encoder_layers_are_found_by_shape_in_another_architecture():
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    from agnews.training.freezing import encoder_layers

    model = AutoModelForSequenceClassification.from_config(DistilBertConfig(
        vocab_size=50, dim=16, n_layers=3, n_heads=2, hidden_dim=32, num_labels=4))
    assert encoder_layers(model) is model.distilbert.transformer.layer


def test_freeze_layers_works_where_the_embeddings_are_not_named_as_in_bert():
    from transformers import AutoModelForSequenceClassification, GPT2Config

    from agnews.training.freezing import freeze

    model = AutoModelForSequenceClassification.from_config(GPT2Config(
        vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=32, num_labels=4))
    freeze(model, embeddings=False, layers=1)
    assert not model.transformer.wte.weight.requires_grad
    assert not any(p.requires_grad for p in model.transformer.h[0].parameters())
    assert all(p.requires_grad for p in model.transformer.h[1].parameters())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_training_loss_is_the_models_cross_entropy_with_the_label_smoothing_asked(
        tiny_model, tokenizer, smoothing):
    from agnews.data.tokenized import TokenRows
    from agnews.model.device import grad_scaler
    from agnews.training.gradients import backward

    train, _ = learnable_frames(tokenizer)
    rows = TokenRows.from_frame(train)
    idx, ids, mask = next(iter(batches(rows, 8, tokenizer.pad_token_id, np.arange(8))))
    labels = torch.from_numpy(rows.labels)
    torch.manual_seed(0)
    model = load_classifier(str(tiny_model)).eval()  # no dropout: both passes see one model
    with torch.no_grad():  # sure answers, so that smoothing moves the loss well past rounding
        model.classifier.weight.mul_(50)
    loss = backward(model, idx, ids, mask, labels, 0, "fp32",
                    grad_scaler("fp32", torch.device("cpu")), Processes(), smoothing)
    with torch.no_grad():
        own = model(input_ids=ids, attention_mask=mask, labels=labels[idx])
    smoothed = torch.nn.functional.cross_entropy(own.logits, labels[idx],
                                                 label_smoothing=smoothing)
    assert loss == pytest.approx(smoothed.item(), rel=1e-5)
    assert (loss == pytest.approx(own.loss.item(), rel=1e-5)) == (smoothing == 0.0)
