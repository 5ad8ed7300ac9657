"""The drift checks on real AG News texts, the batch reader (texts, labels, predict's output),
the metrics a check becomes, and the series run's batch numbering."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agnews.config import LABELS
from agnews.errors import UserError
from agnews.monitoring.batch import check_metrics, read_batch
from agnews.monitoring.drift import (
    accuracy_check,
    class_mix_check,
    domain_classifier_check,
    ks_check,
    piece_share,
    unseen_pieces_check,
)


@pytest.fixture(scope="module")
def test_split(ag_news) -> pd.DataFrame:
    raw = pd.read_csv(ag_news / "test.csv", header=None, names=["label", "title", "desc"],
                      dtype=str, keep_default_na=False)
    raw["text"] = (raw["title"].str.strip() + " " + raw["desc"].str.strip()).str.strip()
    raw["label"] = raw["label"].astype(int) - 1
    return raw.sample(frac=1, random_state=3).reset_index(drop=True)


def test_the_vocabulary_classifier_tells_a_shifted_batch_but_not_a_fresh_sample(test_split):
    reference = test_split["text"].iloc[:400].tolist()
    fresh = test_split["text"].iloc[400:600].tolist()
    unseen = test_split.iloc[600:]  # rows the reference does not hold
    sports = unseen[unseen["label"] == 1]["text"].tolist()
    alike = domain_classifier_check(reference, fresh, seed=0)
    assert not alike.drift and abs(alike.value - 0.5) < 0.08 and alike.reason == ""
    shifted = domain_classifier_check(reference, sports, seed=0)
    assert shifted.drift and shifted.value > 0.75 and shifted.threshold < 0.6
    assert "ROC AUC" in shifted.reason and shifted.detail["batch_words"]


def test_the_vocabulary_check_takes_a_batch_of_a_few_texts(test_split):
    reference = test_split["text"].iloc[:400].tolist()
    few = domain_classifier_check(reference, test_split["text"].iloc[400:403].tolist(), seed=0)
    assert 0 <= few.value <= 1 and few.threshold > 0.5
    one = domain_classifier_check(reference, test_split["text"].iloc[400:401].tolist(), seed=0)
    assert np.isnan(one.value) and not one.drift


def test_text_length_ks_flags_titles_only_not_a_fresh_sample(test_split):
    words = test_split["text"].str.split().str.len().to_numpy()
    titles = test_split["title"].str.split().str.len().to_numpy()
    assert not ks_check("length", "length", words[:400], words[400:600]).drift
    check = ks_check("length", "text length", words[:400], titles[400:600])
    assert check.drift and check.value < 1e-10 and "text length differs" in check.reason
    assert check.detail["batch_mean"] < check.detail["reference_mean"]


def test_the_class_mix_needs_a_significant_and_material_move():
    reference = np.array([250, 250, 250, 250])
    assert not class_mix_check(reference, np.array([52, 48, 51, 49]), LABELS).drift
    only_sports = class_mix_check(reference, np.array([1, 196, 2, 1]), LABELS)
    assert only_sports.drift and only_sports.value > 1 and "Sports 98%" in only_sports.reason
    # a tiny move on a huge batch is significant but immaterial: no drift
    tiny = class_mix_check(reference, np.array([26_000, 25_000, 24_500, 24_500]), LABELS)
    assert tiny.detail["p"] < 0.01 and tiny.value < 0.1 and not tiny.drift


def test_unseen_pieces_count_what_training_never_had():
    unk = 100
    assert piece_share([[1, 2], [3, unk]], known={1, 2, 3, unk}, unk_id=unk) == 0.25
    assert piece_share([[1, 7]], known={1}, unk_id=None) == 0.5
    train, holdout = [[1, 2, 3, 4]] * 5, [[1, 2, 3, 9]] * 5  # a new piece now and then: 25%
    assert not unseen_pieces_check(train, holdout, [[1, 2, 8, 4]], unk).drift
    foreign = unseen_pieces_check(train, holdout, [[7, 8, 9, unk]], unk)
    assert foreign.drift and foreign.value == 1.0 and foreign.detail["reference"] == 0.25


def test_accuracy_flags_only_a_drop_beyond_chance():
    rng = np.random.default_rng(0)
    assert not accuracy_check(rng.random(200) < 0.9, 0.9).drift
    assert not accuracy_check(np.ones(200, bool), 0.9).drift  # better is no drift
    drop = accuracy_check(rng.random(200) < 0.65, 0.9)
    assert drop.drift and drop.value < 0.75 and drop.threshold == 0.9


def test_each_check_becomes_metrics():
    check = class_mix_check(np.array([5, 5, 5, 5]), np.array([0, 20, 0, 0]), LABELS)
    metrics = check_metrics([check])
    assert metrics["drift_class_mix"] == check.value
    assert metrics["drift_class_mix_threshold"] == 0.1 and metrics["drift_class_mix_flag"] == 1.0
    assert "drift_class_mix_p" in metrics


def test_a_batch_is_texts_with_labels_and_predictions_when_given(tmp_path):
    plain = tmp_path / "plain.csv"
    pd.DataFrame({"text": ["a b", "  ", "c d"], "label": ["1", "2", "Sci/Tech"]}).to_csv(
        plain, index=False)
    batch = read_batch(plain)
    assert batch["text"].tolist() == ["a b", "c d"]  # an empty text is no text to check
    assert batch["label"].tolist() == [1, 3]
    assert "predicted" not in batch.columns
    predicted = tmp_path / "predicted.parquet"
    pd.DataFrame({"text": ["a"], "label": ["World"], "predicted": ["Sports"],
                  "confidence": [0.7], **{f"prob_{n}": [0.1] for n in LABELS}}).to_parquet(
        predicted)
    batch = read_batch(predicted)
    assert (batch["label"].tolist(), batch["predicted"].tolist()) == ([0], [1])
    assert batch["confidence"].tolist() == [0.7]
    layout = tmp_path / "agnews.csv"
    layout.write_text('"3","Title","Body text"\n"1","Other","More"\n')
    assert read_batch(layout)["label"].tolist() == [2, 0]


@pytest.mark.parametrize("content, message", [
    ("headline,label\nx,1\n", "no `text` column"),
    ("text,label\n", "no texts"),
    ("text,label\nx,Weather\n", "label 'Weather'"),
])
def test_a_bad_batch_is_one_line(tmp_path, content, message):
    path = tmp_path / "batch.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_batch(path)
    with pytest.raises(UserError, match="not a file"):
        read_batch(tmp_path / "missing.csv")


def test_batches_of_a_model_are_numbered_in_its_series_run(tracking):
    from mlflow.tracking import MlflowClient

    from agnews.monitoring.series import log_to_series, series_run

    client = MlflowClient()
    first, one = series_run(client, tracking, "m v1")
    again, two = series_run(client, tracking, "m v1")
    other, first_of_other = series_run(client, tracking, "m v2")
    assert (first, one, two) == (again, 1, 2) and other != first and first_of_other == 1
    log_to_series(client, first, two, {"drift_class_mix": 0.3})
    assert [(m.step, m.value) for m in client.get_metric_history(first, "drift_class_mix")] == \
        [(2, 0.3)]
    assert client.get_run(first).info.status == "FINISHED"


def test_a_batchs_figures_and_label_metrics():
    from matplotlib.figure import Figure

    from agnews.monitoring.batch import label_metrics
    from agnews.monitoring.plots import drift_figures

    reference = pd.DataFrame({"predicted": [0, 1, 2, 3] * 5, "confidence": np.linspace(.4, 1, 20)})
    batch = pd.DataFrame({"predicted": [1, 1, 1, 0], "confidence": [.9, .8, .95, .5]})
    names = set(drift_figures(reference, batch, np.arange(20) + 5, np.array([3, 4, 5, 6])))
    assert names == {"length_tokens.png", "class_mix.png", "confidence.png"}
    assert label_metrics(batch) == {}
    labelled = batch.assign(label=[1, 1, 0, 0])
    figures = drift_figures(reference, labelled, np.arange(20) + 5, np.array([3, 4, 5, 6]))
    assert "confusion_matrix.png" in figures and all(isinstance(f, Figure)
                                                     for f in figures.values())
    assert label_metrics(labelled)["batch_accuracy"] == 0.75
