"""The team tracking server as a user starts it (`deploy/team-server.sh`), for tests: on a
PostgreSQL database of its own, stopped and started again on the same port, database and
state folder when a test needs the server to go away for a while.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from serving import free_port, wait_for
from support import ROOT, subprocess_env


def need_postgres() -> None:
    """Skip where Debian's PostgreSQL is absent, except in CI, where it must be there."""
    if shutil.which("pg_lsclusters") is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI (.ci/run installs and starts it)")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")


def as_postgres(*args: str) -> subprocess.CompletedProcess:
    """A command as Debian's `postgres` user (root: runuser; anyone else: sudo -n)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else \
        ["sudo", "-n", "-u", "postgres"]
    return subprocess.run([*prefix, *args], cwd="/", capture_output=True, text=True)


def cluster_port() -> str:
    return subprocess.run(["pg_lsclusters", "-h"], capture_output=True,
                          text=True).stdout.split()[2]


class TeamServer:
    """`deploy/team-server.sh *flags --workers N` with its state and artifacts under `tmp`
    (each worker imports MLflow's server app: one starts faster, two serve concurrent runs)."""

    def __init__(self, tmp: Path, *flags: str, workers: int = 2):
        need_postgres()
        self.tmp, self.flags = tmp, (*flags, "--workers", str(workers))
        self.db, self.port = f"agnews_test_{uuid.uuid4().hex[:8]}", free_port()
        self.state, self.artifacts, self.log = tmp / "state", tmp / "artifacts", tmp / "server.log"
        self.env = {**subprocess_env(), "MLFLOW_PORT": str(self.port), "MLFLOW_DB": self.db,
                    "TEAM_SERVER_DIR": str(self.state), "ARTIFACTS_DIR": str(self.artifacts)}
        self.env.pop("MLFLOW_TRACKING_URI", None)
        # the script's own default, whatever the machine running the tests sets
        self.env.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, seconds: float = 120) -> None:
        with self.log.open("a") as out:  # a restart appends: the whole story stays readable
            self.process = subprocess.Popen(
                ["bash", str(ROOT / "deploy" / "team-server.sh"), *self.flags],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        wait_for(f"{self.url}/health", self.process, seconds, self.log)

    def stop(self) -> None:
        """Every process of the server stopped (SIGTERM to its process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.process = None

    def processes(self) -> list[str]:
        """The command line of every process of the running server (its process group)."""
        # -ww: whole command lines (without a terminal ps cuts them at 80 columns)
        listed = subprocess.run(["ps", "-ww", "-eo", "pgid=,args="], capture_output=True,
                                text=True, check=True).stdout
        return [args for pgid, _, args in (line.strip().partition(" ")
                                           for line in listed.splitlines())
                if self.process is not None and pgid == str(self.process.pid)]

    def drop(self) -> None:
        """Stopped, and its databases and role dropped."""
        self.stop()
        as_postgres("psql", "-X", "-q", "-p", cluster_port(), *(
            arg for name in (self.db, f"{self.db}_auth", f"{self.db}_optuna")
            for arg in ("-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
            "-c", f"DROP ROLE IF EXISTS {self.db}")
