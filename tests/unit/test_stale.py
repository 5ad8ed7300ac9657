"""Runs left RUNNING by a dead process are closed by the next run of their step key; runs
of live processes, of other machines and of other keys are left alone."""
from __future__ import annotations

import socket
import subprocess
import sys

from mlflow.tracking import MlflowClient

from agnews.tracking.stale import close_stale, process_dead, process_tags


def dead_process_tags() -> dict[str, str]:
    """The tags of a process of this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {"process.host": socket.gethostname(), "process.pid": str(proc.pid),
            "process.started": "1.00"}


def test_this_process_is_alive_and_an_exited_one_is_dead():
    assert not process_dead(process_tags())
    assert process_dead(dead_process_tags())
    assert process_dead({"process.host": socket.gethostname()})  # died before recording a pid
    # the same pid with another start time is another process: the recorded one is gone
    assert process_dead({**process_tags(), "process.started": "1.00"})
    assert not process_dead({**dead_process_tags(), "process.host": "another-machine"})
    assert not process_dead({})  # nothing recorded: nothing known, nothing touched


def test_only_runs_of_dead_processes_with_the_key_are_closed_with_their_dead_parent(tracking):
    client = MlflowClient()
    dead = dead_process_tags()

    def run(tags: dict[str, str]) -> str:
        return client.create_run(tracking, tags=tags).info.run_id

    parent = run(dead)
    live_parent = run(process_tags())
    step = {"step": "evaluate", "step_key": "k1"}
    killed = run({**step, **dead, "mlflow.parentRunId": parent})
    alive = run({**step, **process_tags(), "mlflow.parentRunId": live_parent})
    elsewhere = run({**step, **dead, "process.host": "another-machine"})
    other_key = run({**step, **dead, "step_key": "k2"})
    finished = run({**step, **dead})
    client.set_terminated(finished, "FINISHED")
    orphan_of_live = run({**step, **dead, "mlflow.parentRunId": live_parent})

    marked = close_stale(client, tracking, "evaluate", "k1")

    assert set(marked) == {killed, parent, orphan_of_live}
    status = {rid: client.get_run(rid).info.status for rid in
              (parent, live_parent, killed, alive, elsewhere, other_key, finished, orphan_of_live)}
    assert status == {parent: "KILLED", killed: "KILLED", orphan_of_live: "KILLED",
                      live_parent: "RUNNING", alive: "RUNNING", elsewhere: "RUNNING",
                      other_key: "RUNNING", finished: "FINISHED"}
    assert client.get_run(killed).info.end_time is not None
    assert close_stale(client, tracking, "evaluate", "k1") == []  # once only
