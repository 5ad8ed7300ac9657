"""A step process's temporary files, MLflow's downloads among them, go with the process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from support import subprocess_env

from agnews.tracking.scratch import PREFIX, hold_lock, remove_orphans

# Fetches a runs:/ artifact (as tokenize, train and evaluate do) and prints where it landed,
# inside a step's error boundary ("step") or bare ("bare").
SCRIPT = """
import os, sys
from agnews.tracking.runs import fetch

def main(argv):
    path = fetch(sys.argv[1], "data", "ingest")
    print(path, os.path.exists(path / "rows.txt"))

if sys.argv[2] == "step":
    from agnews.cli import run_step
    run_step("scratch-test", main)
else:
    main(None)
"""


def run_script(tmp_path, uri: str, mode: str, tmpdir) -> str:
    tmpdir.mkdir()
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "TMPDIR": str(tmpdir)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, uri, mode], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    path, found = proc.stdout.split()
    assert found == "True"  # the artifact was there while the step worked
    return path


def test_a_steps_downloads_are_removed_when_it_exits(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}")
    experiment = client.create_experiment("scratch", artifact_location=str(tmp_path / "store"))
    run = client.create_run(experiment)
    (tmp_path / "rows.txt").write_text("a row\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "rows.txt"), artifact_path="data")
    uri = f"runs:/{run.info.run_id}/data"

    # Bare, MLflow leaves its download behind (what every evaluate did with a model) ...
    bare = tmp_path / "bare-tmp"
    assert Path(run_script(tmp_path, uri, "bare", bare)).exists()
    assert any(bare.iterdir())
    # ... in a step, nothing is left in the temporary folder once the process has exited.
    step = tmp_path / "step-tmp"
    run_script(tmp_path, uri, "step", step)
    assert list(step.iterdir()) == []


def test_a_step_removes_the_scratch_folders_of_processes_that_were_killed(tmp_path):
    tmpdir = tmp_path / "tmp"
    for name in ("killed", "running", "setting-up"):
        (tmpdir / f"{PREFIX}{name}" / "tmpabc").mkdir(parents=True)
    (tmpdir / "someone-elses").mkdir()
    # A process takes the lock and is killed (no exit handler runs) ...
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from pathlib import Path; "
         "from agnews.tracking.scratch import hold_lock; hold_lock(Path(sys.argv[1])); "
         "os.kill(os.getpid(), 9)", str(tmpdir / f"{PREFIX}killed")],
        env=subprocess_env(), capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    # ... while this one still holds its own; a folder without its lock file is being made.
    held = hold_lock(tmpdir / f"{PREFIX}running")
    try:
        assert remove_orphans(tmpdir) == [tmpdir / f"{PREFIX}killed"]
    finally:
        os.close(held)
    assert sorted(p.name for p in tmpdir.iterdir()) == sorted(
        [f"{PREFIX}running", f"{PREFIX}setting-up", "someone-elses"])
