"""Runs left RUNNING by a process that died (kill -9, a crash, a lost machine), closed.

MLflow ends a run when its process exits normally or raises; a process killed outright leaves
its run RUNNING forever in the UI. Each step run and each `main` run therefore records which
process it is (`process.host`, `process.pid`, `process.started`); the next run of the same
step key, holding that key's lock, marks the runs of dead processes KILLED, and their parent
with them when the parent's process is dead too. A run of a process that is alive, or of
another machine (whose processes cannot be seen from here), is never touched.
"""
from __future__ import annotations

import os
import socket

import psutil

RUNNING = "RUNNING"


def process_tags() -> dict[str, str]:
    """Which process this is: host, pid, and its start time (a pid alone can be reused)."""
    started = psutil.Process(os.getpid()).create_time()
    return {"process.host": socket.gethostname(), "process.pid": str(os.getpid()),
            "process.started": f"{started:.2f}"}


def process_dead(tags: dict[str, str]) -> bool:
    """Whether the run's process is known to be gone: recorded on this host, and no process
    with its pid and start time is alive. A run that recorded no pid (its process died before
    its run started) counts as dead when it was created on this host."""
    if tags.get("process.host") != socket.gethostname():
        return False
    pid, started = tags.get("process.pid"), tags.get("process.started")
    if pid is None:
        return True
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except (psutil.NoSuchProcess, ValueError):
        return True


def close_stale(client, experiment_id: str, step: str, key: str) -> list[str]:
    """Mark KILLED the runs of `step` with step key `key` whose process died while they ran,
    and each one's parent run if its process died too; returns the run ids marked. Call it
    holding the key's lock (`agnews.tracking.locks.step_lock`): then no live run of this
    project folder is running that key."""
    runs = client.search_runs([experiment_id], filter_string=(
        f"tags.step_key = '{key}' and tags.step = '{step}' and attributes.status = '{RUNNING}'"))
    marked = []
    for run in runs:
        if not process_dead(run.data.tags):
            continue
        client.set_terminated(run.info.run_id, "KILLED")
        marked.append(run.info.run_id)
        parent_id = run.data.tags.get("mlflow.parentRunId")
        if parent_id and parent_id not in marked:
            parent = client.get_run(parent_id)
            if parent.info.status == RUNNING and process_dead(parent.data.tags):
                client.set_terminated(parent_id, "KILLED")
                marked.append(parent_id)
    return marked
