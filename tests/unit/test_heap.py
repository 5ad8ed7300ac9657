"""Python's garbage collector around a step (`agnews.heap`): full collections wait while a step
loads its libraries, then skip what it loaded, and what is frozen goes back to the collector
when the step's run ends."""
from __future__ import annotations

import gc
import weakref

import pytest

from agnews import heap


class Cycle:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self):
        self.me = self


def tracked(obj) -> bool:
    """Whether the collector's passes reach `obj` (frozen objects are left out)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def collector_as_it_was():
    """Each test starts from the worker's collector settings and leaves them as they were."""
    before = gc.get_threshold()
    yield
    assert not heap._resume and heap._frozen_depth == 0, "a test left the collector changed"
    gc.unfreeze()
    gc.set_threshold(*before)


def test_deferring_holds_back_full_collections_and_resuming_restores_the_thresholds():
    gc.set_threshold(500, 7, 9)  # not Python's defaults: resuming must restore these
    heap.defer_full_collections()
    assert gc.get_threshold() == (500, 7, heap.DEFERRED)
    heap.defer_full_collections()  # a step run inline: still one thing to resume
    heap.resume_full_collections()
    assert gc.get_threshold() == (500, 7, 9)
    heap.resume_full_collections()  # nothing deferred: nothing changes
    assert gc.get_threshold() == (500, 7, 9)


def test_long_lived_freezes_what_is_alive_and_still_collects_what_is_made_inside():
    kept = Cycle()
    heap.defer_full_collections()
    with heap.long_lived():
        assert gc.get_freeze_count() > 0
        assert heap.DEFERRED not in gc.get_threshold()  # collections resumed
        assert not tracked(kept)  # out of the collector's passes
        made_inside = weakref.ref(Cycle())
        gc.collect()
        assert made_inside() is None
    assert gc.get_freeze_count() == 0
    assert tracked(kept)


def test_what_was_frozen_and_dropped_is_collected_once_the_block_ends():
    old = Cycle()
    gone = weakref.ref(old)
    with heap.long_lived():
        del old
        gc.collect()
        assert gone() is not None  # frozen: no pass reaches it
    gc.collect()
    assert gone() is None


def test_nested_blocks_freeze_and_unfreeze_only_at_the_outermost():
    before = Cycle()
    with heap.long_lived():
        between = Cycle()
        with heap.long_lived():  # a step inline inside main's block
            assert tracked(between)  # the inner block froze nothing more
            assert not tracked(before)
        assert not tracked(before)  # and unfroze nothing
    assert tracked(before) and tracked(between)


def test_a_step_loads_with_full_collections_deferred_and_works_with_them_resumed(tracking):
    """`run_step` defers them; the step's run (`step_run`) freezes what was loaded and resumes
    them; all is as before once the step returns, and after a step that fails."""
    from agnews.cli import run_step
    from agnews.errors import UserError
    from agnews.tracking.runs import step_run

    before = gc.get_threshold()
    seen = {}

    def main(argv):
        seen["loading"] = gc.get_threshold()
        with step_run("probe", {}):
            seen["working"] = gc.get_threshold(), gc.get_freeze_count()
        if argv:
            raise UserError("bad value: pass another")

    run_step("probe", main, [])
    assert seen["loading"] == (before[0], before[1], heap.DEFERRED)
    assert seen["working"][0] == before and seen["working"][1] > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(SystemExit):
        run_step("probe", main, ["fail"])
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
