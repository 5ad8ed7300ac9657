"""A long scoring pass split between the step's process and a forked copy of it
(`agnews.model.forked`): every row scored once, as in one process, the child really another
process, its failure made good, and nothing left running."""
from __future__ import annotations

import os
import sys

import numpy as np
import psutil
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from agnews.model import forked
from agnews.model.batching import predict_logits
from agnews.model.forked import MIN_BATCHES, halves, split_logits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="a pass splits on Linux only")


def fake_batches(shapes: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray, None]]:
    """Batches of (rows, width), their rows' indices consecutive but in reverse, so no batch
    holds rows 0.. in order."""
    out, start = [], 0
    for rows, width in shapes:
        out.append((np.arange(start, start + rows)[::-1], np.zeros((rows, width)), None))
        start += rows
    return out


def scored_by_pid(batch) -> np.ndarray:
    """Logits that say which row it was and which process scored it."""
    idx = batch[0]
    return np.stack([idx.astype(np.float32), np.full(len(idx), os.getpid(), np.float32)], axis=1)


class Rows:
    def __init__(self):
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


@pytest.fixture
def two_threads():
    """Scoring on two threads, as on the two-core machines the split was measured on."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_child_left():
    """A check that no process the test forked is left, running or unreaped (children the
    test process had before it are not its business)."""
    already = children()
    return lambda: not children() - already


def test_the_work_divides_into_halves_of_about_equal_tokens():
    # 64 x 40 = 2560 tokens, then 2048, 1536, 1024, 512, 512: 8192 in all
    todo = fake_batches([(64, 40), (64, 32), (64, 24), (64, 16), (64, 8), (64, 8)])
    assert halves(todo) == 2  # 4608 tokens here, 3584 in the child
    assert halves(fake_batches([(8, 8)] * 6)) == 3
    assert halves(fake_batches([(64, 128), (1, 8)])) == 1  # each process gets one at least


def test_the_child_scores_the_shorter_half_and_every_row_comes_back_once(two_threads,
                                                                         no_child_left):
    todo = fake_batches([(5, 16), (4, 16), (4, 16), (3, 16), (3, 16), (2, 16), (1, 16)])
    progress = Rows()
    out = split_logits(scored_by_pid, todo, 22, 2, progress)
    assert out[:, 0].tolist() == list(range(22))  # each row in its place
    pids = [set(out[batch[0], 1].astype(int)) for batch in todo]
    assert pids[:2] == [{os.getpid()}] * 2  # 9 of the 22 rows' 352 tokens: up to half
    assert len(set.union(*pids[2:])) == 1 and os.getpid() not in set.union(*pids[2:])
    assert progress.n == 22
    assert torch.get_num_threads() == 2  # one thread each while split, two again after
    assert no_child_left()


def test_what_a_dead_child_did_not_send_is_scored_here(two_threads, no_child_left):
    parent = os.getpid()
    todo = fake_batches([(3, 8)] * 8)  # this process scores rows 0-11, the child 12-23

    def child_dies_after_one(batch):
        if os.getpid() != parent and batch[0][0] > 14:
            os._exit(3)  # the child's first batch (rows 12-14) goes back, then it dies
        return scored_by_pid(batch)

    progress = Rows()
    out = split_logits(child_dies_after_one, todo, 24, 2, progress)
    assert out[:, 0].tolist() == list(range(24))
    child = int(out[12, 1])
    assert child != parent and set(out[12:15, 1].astype(int)) == {child}
    assert set(out[:12, 1].astype(int)) == set(out[15:, 1].astype(int)) == {parent}
    assert progress.n == 24
    assert no_child_left()


def test_a_failure_here_ends_the_child_and_is_raised(two_threads, no_child_left):
    parent = os.getpid()

    def fails_here_on_the_third(batch):
        if os.getpid() == parent and batch[0][0] >= 6:
            raise RuntimeError("out of memory")
        return scored_by_pid(batch)

    with pytest.raises(RuntimeError, match="out of memory"):
        split_logits(fails_here_on_the_third, fake_batches([(3, 8)] * 8), 24, 2)
    assert torch.get_num_threads() == 2
    assert no_child_left()


@pytest.fixture(scope="module")
def tiny(tiny_model):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = [f"story {i}: " + "markets move " * (i % 9) for i in range(40)]
    return model, tokenizer, tokenizer(texts)["input_ids"]


@pytest.fixture
def forks(monkeypatch):
    calls = []

    def counted():
        calls.append(1)
        return real()

    real = os.fork
    monkeypatch.setattr(forked.os, "fork", counted)
    return calls


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_split_pass_gives_the_logits_of_one_process(tiny, two_threads, forks, no_child_left,
                                                     precision):
    model, tokenizer, seqs = tiny
    whole = predict_logits(model, seqs, 4, tokenizer.pad_token_id, precision)
    assert not forks
    split = predict_logits(model, seqs, 4, tokenizer.pad_token_id, precision, split=True)
    assert len(forks) == 1
    # each batch is scored whole by the same kernels, on one thread instead of two
    assert np.abs(split - whole).max() < 1e-6
    # the rows differ from each other by far more than that: a row out of place would show
    assert np.abs(np.roll(split, 1, axis=0) - whole).max() > 1e-5
    assert no_child_left()


def test_a_pass_stays_whole_where_a_split_was_not_measured_or_would_not_pay(tiny, forks,
                                                                            monkeypatch):
    model, tokenizer, seqs = tiny
    before = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            predict_logits(model, seqs, 4, tokenizer.pad_token_id, split=True)
        torch.set_num_threads(2)
        short = seqs[:4 * (MIN_BATCHES - 1)]
        assert len(predict_logits(model, short, 4, tokenizer.pad_token_id, split=True)) == len(
            short)
        monkeypatch.setattr(forked.sys, "platform", "darwin")
        predict_logits(model, seqs, 4, tokenizer.pad_token_id, split=True)
    finally:
        torch.set_num_threads(before)
    assert not forks


def test_a_pass_that_cannot_fork_runs_whole_here(two_threads, monkeypatch):
    def no_fork():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(forked.os, "fork", no_fork)
    progress = Rows()
    out = split_logits(scored_by_pid, fake_batches([(3, 8)] * 6), 18, 2, progress)
    assert out[:, 0].tolist() == list(range(18))
    assert set(out[:, 1].astype(int)) == {os.getpid()}
    assert progress.n == 18
    assert torch.get_num_threads() == 2
