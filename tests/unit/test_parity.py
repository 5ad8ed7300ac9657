"""The parity gate (`agnews.model.parity`): which runtime may score in place of PyTorch."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agnews.model.parity import (
    MOST_ROWS,
    choose,
    disagreeing,
    gate_rows,
    gate_sample,
    judge,
    most_disagreements,
    slower,
)


def one_hot(classes: np.ndarray) -> np.ndarray:
    out = np.full((len(classes), 4), 0.1)
    out[np.arange(len(classes)), classes] = 0.7
    return out


@pytest.fixture
def answers():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 1000)
    reference = labels.copy()
    reference[:100] = (labels[:100] + 1) % 4  # PyTorch right on 900 of 1,000 rows
    return labels, reference


def test_the_same_answers_pass_with_full_agreement(answers):
    labels, reference = answers
    trial = judge("onnx", one_hot(reference), one_hot(reference), labels, seconds=2.0)
    assert trial.passed and trial.agreement == 1.0 and trial.rows_per_second == 500
    assert trial.agreement_low < 1.0 < trial.agreement_high + 1e-9  # an interval, not a point
    assert trial.p_worse == 1.0


def test_agreement_under_the_floor_fails_even_without_an_accuracy_loss(answers):
    labels, reference = answers
    variant = reference.copy()
    # 6 rows of 1,000 change class, three now right and three now wrong: 99.4% agreement
    variant[100:103] = (labels[100:103] + 1) % 4
    variant[:3] = labels[:3]
    trial = judge("onnx-int8", one_hot(reference), one_hot(variant), labels, seconds=1.0)
    assert trial.agreement == pytest.approx(0.994)
    assert trial.only_pytorch_right == 3 and trial.only_variant_right == 3
    assert not trial.passed and "not surely 99.5%" in trial.why


def test_agreement_passes_on_its_bound_so_the_same_share_needs_enough_rows():
    """99.7% agreement: over 1,000 rows the one-sided 95% bound is under 99.5% (3 rows could be
    chance), over 20,000 rows it is above."""
    for rows, passed in ((1_000, False), (20_000, True)):
        labels = np.zeros(rows, dtype=int)
        variant = labels.copy()
        variant[:rows * 3 // 1000] = 1
        labels[:rows * 3 // 1000] = 1  # the rows it changes it gets right: no accuracy loss
        trial = judge("onnx-int8", one_hot(np.zeros(rows, dtype=int)), one_hot(variant),
                      labels, 1.0)
        assert trial.agreement == pytest.approx(0.997)
        assert trial.passed is passed, trial.why


def test_rows_without_a_label_count_for_agreement_only(answers):
    labels, reference = answers
    unlabeled = np.concatenate([np.full(1000, -1), labels])
    trial = judge("onnx", one_hot(np.concatenate([reference, reference])),
                  one_hot(np.concatenate([reference, reference])), unlabeled, 1.0)
    assert trial.rows == 2000 and trial.accuracy == pytest.approx(0.9)
    assert "on 1000 test rows" in trial.why


def test_a_loss_mcnemar_detects_fails_though_agreement_is_high():
    labels = np.zeros(20_000, dtype=int)
    reference = labels.copy()
    variant = labels.copy()
    variant[:40] = 1  # 40 rows PyTorch got right, now wrong: 99.8% agreement
    trial = judge("onnx-int8", one_hot(reference), one_hot(variant), labels, seconds=1.0)
    assert trial.agreement == pytest.approx(0.998)
    assert trial.p_worse < 1e-9 and not trial.passed and "McNemar" in trial.why


def test_the_fastest_that_passed_scores(answers):
    labels, reference = answers
    same = one_hot(reference)
    worse = reference.copy()
    worse[100:200] = (labels[100:200] + 1) % 4
    trials = [judge("pytorch", same, same, labels, 4.0), judge("onnx", same, same, labels, 2.0),
              judge("onnx-int8", same, one_hot(worse), labels, 1.0)]
    scorer, reason = choose(trials)
    assert scorer == "onnx"
    assert reason.startswith("the fastest that passed the parity gate, 500 rows/s (vs pytorch "
                             "250 rows/s; onnx-int8 1000 rows/s, failed: agrees with PyTorch on")
    assert reason.endswith(f"; it {trials[1].why}")


def test_a_runtime_asked_for_scores_even_if_it_failed_and_the_reason_says_so(answers):
    labels, reference = answers
    worse = reference.copy()
    worse[100:200] = (labels[100:200] + 1) % 4
    same = one_hot(reference)
    trials = [judge("pytorch", same, same, labels, 4.0),
              judge("onnx-int8", same, one_hot(worse), labels, 1.0)]
    scorer, reason = choose(trials, "onnx-int8")
    assert scorer == "onnx-int8" and "-P scorer=onnx-int8" in reason and "FAILED" in reason


def test_metrics_name_each_runtime(answers):
    labels, reference = answers
    metrics = judge("onnx-int8", one_hot(reference), one_hot(reference), labels, 1.0).metrics()
    assert set(metrics) == {f"parity_onnx_int8_{k}" for k in (
        "rows_per_second", "agreement", "agreement_low", "agreement_high", "accuracy",
        "p_worse")}


def test_a_variant_stopped_as_slower_is_never_chosen_and_logs_no_made_up_numbers(answers):
    labels, reference = answers
    same = one_hot(reference)
    trials = [judge("pytorch", same, same, labels, 4.0), slower("onnx", 1000, 640, 4.1, 4.0)]
    assert not trials[1].passed and not trials[1].judged
    scorer, reason = choose(trials)
    assert scorer == "pytorch"
    assert reason == ("the fastest that passed the parity gate, 250 rows/s (vs onnx slower than "
                      "PyTorch: 640 of 1000 rows scored when PyTorch's 4.0 s for all of them "
                      "had passed; not judged)")
    assert trials[1].metrics() == {}  # no agreement, accuracy or speed it did not measure


def test_a_variant_stopped_on_its_pace_says_what_it_was_on_course_for(answers):
    labels, reference = answers
    same = one_hot(reference)
    trials = [judge("pytorch", same, same, labels, 4.0),
              slower("onnx", 1000, 192, 1.2, 4.0, projected=6.3)]
    assert not trials[1].passed and not trials[1].judged and trials[1].metrics() == {}
    assert choose(trials)[0] == "pytorch"
    assert trials[1].why == ("slower than PyTorch: on course for 6.3 s for all 1000 rows after "
                             "192 of them (1.2 s), against PyTorch's 4.0 s; not judged")


@pytest.mark.parametrize("rows", [539, 700, 1000, 2000])
def test_one_disagreement_past_the_most_fails_the_full_judgement(rows):
    """What lets train stop a variant early: with `most_disagreements` rows changed the gate
    still passes it, with one more it fails, whatever the rows it had not scored."""
    most = most_disagreements(rows)
    assert most == {539: 0, 700: 0, 1000: 1, 2000: 4}[rows]
    for changed, passed in ((most, True), (most + 1, False)):
        labels, variant = np.zeros(rows, dtype=int), np.zeros(rows, dtype=int)
        variant[:changed] = labels[:changed] = 1  # right where it differs: no accuracy loss
        trial = judge("onnx-int8", one_hot(np.zeros(rows, dtype=int)), one_hot(variant),
                      labels, 1.0)
        assert trial.passed is passed, trial.why
    assert most_disagreements(538) == -1  # too few rows for even full agreement


def test_a_variant_stopped_for_disagreeing_fails_and_logs_no_made_up_numbers(answers):
    labels, reference = answers
    same = one_hot(reference)
    trials = [judge("pytorch", same, same, labels, 4.0), disagreeing("onnx-int8", 1000, 212, 2)]
    assert not trials[1].passed and not trials[1].judged
    assert choose(trials) == ("pytorch", "the fastest that passed the parity gate, 250 rows/s "
                              "(vs onnx-int8 disagreed with PyTorch on 2 of the first 212 of "
                              "1000 rows: at best 99.80% agreement, whose bound cannot show "
                              "99.5%; stopped there, failed)")
    assert trials[1].metrics() == {}


def test_the_gate_judges_val_and_test_rows_and_at_most_a_seeded_two_thousand():
    keep, labels = gate_rows(200, np.arange(500) % 4, seed=1)
    assert list(keep) == list(range(700)) and list(labels[:200]) == [-1] * 200
    assert list(labels[200:]) == list(np.arange(500) % 4)
    keep, labels = gate_rows(200, np.arange(7600) % 4, seed=1)
    assert len(keep) == MOST_ROWS == 2000 and np.all(np.diff(keep) > 0)
    assert np.array_equal(keep, gate_rows(200, np.arange(7600) % 4, seed=1)[0])  # a rerun
    assert not np.array_equal(keep, gate_rows(200, np.arange(7600) % 4, seed=2)[0])
    assert np.array_equal(labels[keep >= 200], (keep[keep >= 200] - 200) % 4)


def test_the_gate_sample_is_the_drawn_val_then_test_rows_with_their_labels():
    from agnews.data.tokenized import TokenRows

    def rows(n: int, first_id: int) -> TokenRows:  # row i holds the one id first_id + i
        return TokenRows.from_frame(pd.DataFrame({"input_ids": [[first_id + i] for i in range(n)],
                                                  "label": np.arange(n) % 4}))

    ids, labels = gate_sample(rows(300, 0), rows(2500, 10_000), seed=3)
    keep, expected = gate_rows(300, np.arange(2500) % 4, seed=3)
    assert [row[0] for row in ids] == [k if k < 300 else 10_000 + k - 300 for k in keep]
    assert np.array_equal(labels, expected) and len(ids) == MOST_ROWS
