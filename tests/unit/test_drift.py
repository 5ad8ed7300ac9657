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
    Check,
    accuracy_check,
    class_mix_check,
    domain_classifier_check,
    judge,
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
    assert alike.p > 0.05 and abs(alike.value - 0.5) < 0.1
    shifted = domain_classifier_check(reference, sports, seed=0)
    assert shifted.p < 1e-6 and shifted.value > 0.75
    assert "ROC AUC" in shifted.reason and shifted.detail["batch_words"]


def test_the_vocabulary_check_takes_a_batch_of_a_few_texts(test_split):
    reference = test_split["text"].iloc[:400].tolist()
    few = domain_classifier_check(reference, test_split["text"].iloc[400:406].tolist(), seed=0)
    assert 0 <= few.value <= 1 and 0 < few.p <= 1
    one = domain_classifier_check(reference, test_split["text"].iloc[400:401].tolist(), seed=0)
    assert np.isnan(one.value) and np.isnan(one.p)
    assert not judge([one])[0].drift  # not judged is not drift


def test_text_length_ks_flags_titles_only_not_a_fresh_sample(test_split):
    words = test_split["text"].str.split().str.len().to_numpy()
    titles = test_split["title"].str.split().str.len().to_numpy()
    assert ks_check("length", "length", words[:400], words[400:600]).p > 0.05
    check = ks_check("length", "text length", words[:400], titles[400:600])
    assert check.p < 1e-10 and check.value > 0.5 and "text length differs" in check.reason
    assert check.detail["batch_mean"] < check.detail["reference_mean"]


def test_the_class_mix_needs_a_significant_and_material_move():
    reference = np.array([250, 250, 250, 250])
    assert class_mix_check(reference, np.array([52, 48, 51, 49]), LABELS).p > 0.05
    only_sports = class_mix_check(reference, np.array([1, 196, 2, 1]), LABELS)
    assert only_sports.p < 1e-10 and only_sports.material and only_sports.value > 1
    assert "Sports 98%" in only_sports.reason and judge([only_sports])[0].drift
    # a small reference cannot tell a one-point move, however large the batch (the
    # one-sample test this replaced took the reference's shares as exact and did)
    moved = np.array([26_000, 25_000, 24_500, 24_500])
    assert class_mix_check(reference, moved, LABELS).p > 0.5
    # with a large reference the move is significant, but immaterial: no drift
    tiny = class_mix_check(reference * 100, moved, LABELS)
    assert tiny.p < 0.01 and tiny.value < 0.1 and not judge([tiny])[0].drift
    # a class neither side predicts is left out of the test, not a division by zero
    assert class_mix_check(np.array([50, 50, 0, 0]), np.array([10, 10, 0, 0]), LABELS).p > 0.5


def test_unseen_pieces_count_what_training_never_had():
    unk = 100
    assert piece_share([[1, 2], [3, unk]], known={1, 2, 3, unk}, unk_id=unk) == 0.25
    assert piece_share([[1, 7]], known={1}, unk_id=None) == 0.5
    train, holdout = [[1, 2, 3, 4]] * 5, [[1, 2, 3, 9], [1, 2, 3, 4]] * 10  # 12.5% new
    alike = unseen_pieces_check(train, holdout, [[1, 2, 8, 4], [1, 2, 3, 4]] * 5, unk)
    assert alike.p > 0.05 and not alike.material
    foreign = unseen_pieces_check(train, holdout, [[7, 8, 9, unk]] * 10, unk)
    assert foreign.value == 1.0 and foreign.detail["reference"] == 0.125
    assert foreign.p < 1e-4 and foreign.material and judge([foreign])[0].drift


def test_accuracy_flags_only_a_drop_beyond_chance():
    def right(count: int, rows: int = 200) -> np.ndarray:
        return np.arange(rows) < count

    assert accuracy_check(right(176), 450, 500).p > 0.05  # 0.88 against 0.90: chance
    assert accuracy_check(right(200), 450, 500).p > 0.5  # better is no drift
    drop = accuracy_check(right(130), 450, 500)
    assert drop.p < 1e-6 and drop.value < 0.75 and drop.detail["reference"] == 0.9
    assert "(450/500)" in drop.reason
    # the same drop allowed by a margin of 0.3 is no longer evidence of drift
    assert accuracy_check(right(130), 450, 500, margin=0.3).p > 0.5


def false_alarms(p_value, reference_rows: int, batch_rows: int, accuracy: float = 0.88,
                 draws: int = 1000, alpha: float = 0.05) -> float:
    """How often an accuracy test flags a batch drawn from the reference's own distribution:
    both sides' correct counts drawn from the same accuracy, `p_value(batch_right,
    reference_right)` judged at `alpha`."""
    rng = np.random.default_rng(1)
    batch = rng.binomial(batch_rows, accuracy, draws)
    reference = rng.binomial(reference_rows, accuracy, draws)
    return float(np.mean([p_value(b, r) < alpha for b, r in zip(batch, reference, strict=True)]))


@pytest.mark.parametrize("reference_rows, batch_rows", [(500, 400), (500, 5000), (7600, 200)])
def test_the_accuracy_checks_false_alarm_rate_holds_its_nominal_rate(reference_rows,
                                                                    batch_rows):
    """1,000 unchanged batches: the two-sample test flags at most 5% of them (within three
    standard errors); the one-sample test against the reference's accuracy as if it were exact,
    which this check replaced, flags far more once the batch outgrows the reference."""
    from scipy.stats import binomtest

    def two_sample(b, r):
        return accuracy_check(np.arange(batch_rows) < b, r, reference_rows).p

    def one_sample(b, r):
        return binomtest(int(b), batch_rows, r / reference_rows, alternative="less").pvalue

    bound = 0.05 + 3 * np.sqrt(0.05 * 0.95 / 1000)
    assert false_alarms(two_sample, reference_rows, batch_rows) <= bound
    if batch_rows > reference_rows:
        assert false_alarms(one_sample, reference_rows, batch_rows) > 3 * bound


def test_holm_holds_the_batchs_checks_to_one_false_alarm_rate():
    def check(p, material=True):
        return Check("c", 0.0, p, "", material=material)

    judged = judge([check(0.001), check(0.02), check(0.03), check(0.04)], alpha=0.05)
    assert [c.drift for c in judged] == [True, False, False, False]  # 0.02 * 3 > 0.05
    assert [round(c.p_holm, 3) for c in judged] == [0.004, 0.06, 0.06, 0.06]
    # not judged (NaN) is left out of the family; immaterial never flags
    judged = judge([check(float("nan")), check(0.001, material=False), check(0.01)])
    assert np.isnan(judged[0].p_holm) and not judged[0].drift
    assert [c.drift for c in judged[1:]] == [False, True]
    assert judged[1].p_holm == pytest.approx(0.002)


def test_each_check_becomes_metrics():
    check = judge([class_mix_check(np.array([5, 5, 5, 5]), np.array([0, 20, 0, 0]), LABELS)])[0]
    metrics = check_metrics([check])
    assert metrics["drift_class_mix"] == check.value and metrics["drift_class_mix_flag"] == 1.0
    assert metrics["drift_class_mix_p"] == check.p and metrics["drift_class_mix_p_holm"] == check.p


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


def test_the_drift_report_gives_each_checks_p_before_and_after_holm():
    from agnews.monitoring.report import drift_report
    from agnews.report.document import Para, Table

    checks = judge([Check("accuracy", 0.7, 1e-5, "accuracy fell"),
                    Check("vocabulary_auc", float("nan"), float("nan"), "")], alpha=0.025)
    blocks = drift_report("m v1", 3, 40, checks, {}, {"evaluate": "e1", "ingest": "i1"}, 0.025)
    table = next(b for b in blocks if isinstance(b, Table))
    assert table.header[:5] == ["check", "value", "p", "Holm p", "drift"]
    assert table.rows[0][1:5] == ["0.7000", "1.00e-05", "1.00e-05", "yes"]
    assert table.rows[1][1:5] == ["n/a", "n/a", "n/a", "no"]  # not judged
    assert any("at most 2.5% of the time" in b.text for b in blocks if isinstance(b, Para))
