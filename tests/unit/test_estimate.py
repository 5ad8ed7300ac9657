"""The batch's accuracy without labels: calibrated on labelled reference rows, checked on
synthetic models whose true accuracy is known, for its error, its interval's coverage and its
drop test's false-alarm rate."""
from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from agnews.monitoring.drift import Check, judge
from agnews.monitoring.estimate import calibrate, estimate_accuracy, estimated_accuracy_check
from agnews.monitoring.report import drift_report
from agnews.report.document import to_markdown


def rows(rng, n: int, overconfidence: float = 0.0, shift: float = 0.0):
    """Confidences and correctness of a model right with probability confidence minus
    `overconfidence`; `shift` moves the confidences down (a harder batch)."""
    confidence = np.clip(rng.beta(8, 1.2, n) - shift, 0.25, 1.0)
    correct = rng.random(n) < np.clip(confidence - overconfidence, 0, 1)
    return confidence, correct


def test_calibration_corrects_an_overconfident_model():
    """Right 10 points less often than it says: the raw mean confidence is 10 points off,
    the calibrated estimate within 2 points of the batch's real accuracy."""
    rng = np.random.default_rng(0)
    cal = calibrate(*rows(rng, 2000, overconfidence=0.1))
    confidence, correct = rows(rng, 1000, overconfidence=0.1)
    estimate = estimate_accuracy(cal, confidence)
    assert confidence.mean() - correct.mean() > 0.08
    assert abs(estimate.accuracy - correct.mean()) < 0.02
    assert estimate.low < correct.mean() < estimate.high and estimate.rows == 1000


@pytest.mark.parametrize("reference_rows, batch_rows", [(500, 50), (500, 1000), (2000, 200)])
def test_the_interval_covers_the_batchs_real_accuracy_about_95_percent_of_the_time(
        reference_rows, batch_rows):
    rng = np.random.default_rng(reference_rows + batch_rows)
    covered = 0
    for _ in range(400):
        cal = calibrate(*rows(rng, reference_rows, overconfidence=0.05))
        confidence, correct = rows(rng, batch_rows, overconfidence=0.05)
        est = estimate_accuracy(cal, confidence)
        covered += est.low <= correct.mean() <= est.high
    low, high = proportion_confint(covered, 400, method="beta")
    assert low <= 0.95 and high >= 0.90, covered


@pytest.mark.parametrize("batch_rows", [50, 1000])
def test_the_drop_test_holds_its_false_alarm_rate_on_unchanged_batches(batch_rows):
    rng = np.random.default_rng(batch_rows)
    alarms = 0
    for _ in range(400):
        ref_confidence, ref_correct = rows(rng, 500)
        cal = calibrate(ref_confidence, ref_correct)
        batch_confidence, _ = rows(rng, batch_rows)
        alarms += estimated_accuracy_check(cal, ref_confidence, batch_confidence).p < 0.05
    assert proportion_confint(alarms, 400, method="beta")[0] <= 0.05, alarms


def test_a_harder_batch_is_estimated_lower_and_flagged():
    rng = np.random.default_rng(3)
    ref_confidence, ref_correct = rows(rng, 500)
    cal = calibrate(ref_confidence, ref_correct)
    confidence, correct = rows(rng, 400, shift=0.25)
    check = estimated_accuracy_check(cal, ref_confidence, confidence)
    assert check.value < ref_correct.mean() - 0.1 and abs(check.value - correct.mean()) < 0.06
    assert check.p < 1e-6 and "estimated accuracy (no labels) fell to" in check.reason
    assert check.detail["ci_low"] < check.value < check.detail["ci_high"]
    # a margin as large as the drop lets it pass
    margin = ref_correct.mean() - check.value + 0.05
    assert estimated_accuracy_check(cal, ref_confidence, confidence, margin).p > 0.5


def test_a_check_outside_the_family_is_logged_but_never_judged():
    checks = judge([Check("accuracy", 0.7, 1e-9, "fell"),
                    Check("estimated_accuracy", 0.71, 1e-9, "fell", in_family=False)])
    assert checks[0].drift and not checks[1].drift and np.isnan(checks[1].p_holm)
    md = to_markdown(drift_report("m", 1, 100, checks, {}, {"evaluate": "e", "ingest": "i"},
                                  0.05))
    assert "Drift: 1 of 1 checks flag this batch." in md
    assert "| estimated_accuracy | 0.7100 | 1.00e-09 | n/a | not judged |" in md
