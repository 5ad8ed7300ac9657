"""Which epoch training keeps: the last, unless an earlier one is significantly more accurate."""
import numpy as np
import pytest

from agnews.training.selection import choose_epoch, is_candidate, rule_per_draw


def answers(right: int, rows: int = 200) -> np.ndarray:
    return np.arange(rows) < right


def test_an_earlier_epoch_a_little_more_accurate_is_not_kept():
    # 4 more rows right of 200: McNemar's p is 0.06 even before Bonferroni's correction.
    earlier, last = answers(184), answers(180)
    choice = choose_epoch(2, last, 1, earlier)
    assert choice.epoch == 2 and choice.p_value == pytest.approx(0.0625)


def test_an_earlier_epoch_far_more_accurate_is_kept():
    choice = choose_epoch(4, answers(150), 1, answers(190))
    assert choice.epoch == 1 and choice.p_value < 1e-9


def test_the_threshold_is_divided_among_the_earlier_epochs():
    # Discordant rows 6 to 0: p = 1/64 = 0.0156, below 0.05 / 3 but above 0.05 / 4.
    earlier, last = answers(186), answers(180)
    assert choose_epoch(4, last, 1, earlier).epoch == 1
    assert choose_epoch(5, last, 1, earlier).epoch == 5


def test_without_a_candidate_or_with_the_last_as_candidate_the_last_is_kept():
    assert choose_epoch(3, answers(100), 0, None).epoch == 3
    assert choose_epoch(2, answers(100), 2, answers(150)).epoch == 2


def test_the_candidate_is_the_most_accurate_so_far_and_a_tie_goes_to_the_later_epoch():
    assert is_candidate(answers(10), None)
    assert is_candidate(answers(10), answers(10))
    assert not is_candidate(answers(9), answers(10))


def test_the_rule_over_epochs_picks_the_most_accurate_earlier_epoch_to_test():
    right = np.stack([answers(150), answers(195), answers(190), answers(120)])
    assert rule_per_draw(right) == 2
    right[-1] = answers(194)  # now the last is as good as any earlier one
    assert rule_per_draw(right) == 4


def test_equally_accurate_epochs_keep_an_earlier_one_at_most_about_alpha_of_the_time():
    rng = np.random.default_rng(0)
    kept_earlier = 0
    for _ in range(400):
        base = rng.random(200) < 0.9
        redraw = rng.random((4, 200)) < 0.2
        right = np.where(redraw, rng.random((4, 200)) < 0.9, base)
        kept_earlier += rule_per_draw(right) != 4
    assert kept_earlier / 400 <= 0.05
