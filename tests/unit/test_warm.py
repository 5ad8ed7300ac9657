"""Steps forked from a warm server (agnews.tracking.warm): when main forks them, and what the
server holds before it forks any (agnews.tracking.preload). A forked `main` end to end, its
failures and a step killed mid-run are in tests/e2e (test_main, test_step_cache_runs)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import ROOT, subprocess_env

from agnews.tracking import warm
from agnews.tracking.inline import INLINE_ENV


@pytest.fixture
def owner(monkeypatch):
    """This process as `main` run from the command line: it owns its steps."""
    monkeypatch.setattr(warm, "_enabled", [])
    monkeypatch.delenv(warm.FORK_ENV, raising=False)
    monkeypatch.delenv(INLINE_ENV, raising=False)
    warm.serve_steps()


def test_steps_are_forked_only_by_a_process_that_owns_them(monkeypatch):
    monkeypatch.setattr(warm, "_enabled", [])  # a test calling main in-process
    monkeypatch.delenv(warm.FORK_ENV, raising=False)
    assert not warm.forking()


def test_a_main_run_from_the_command_line_forks_its_steps_on_linux(owner, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert warm.forking()
    monkeypatch.setattr(sys, "platform", "darwin")  # fork after its system libraries is unsafe
    assert not warm.forking()


def test_fork_steps_0_starts_each_step_in_a_new_interpreter(owner, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv(warm.FORK_ENV, "0")
    assert not warm.forking()


def test_steps_inline_start_no_server(owner, monkeypatch):
    """Inline, main runs its steps itself; what needs a process of its own (a sweep's n_jobs
    trials) then starts a new interpreter, not a server for a step or two."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv(INLINE_ENV, "1")
    assert not warm.forking()


def test_a_server_only_where_a_step_that_loads_torch_will_run():
    assert warm.worth_a_server(["ingest", "tokenize", "train", "evaluate", "register", "report"])
    assert warm.worth_a_server(["evaluate", "register", "report"])
    assert not warm.worth_a_server(["register", "report"])
    assert not warm.worth_a_server([])  # all cached


def test_the_server_loads_every_library_and_starts_nothing_a_fork_would_break():
    """In a process of its own, as the server imports it: every module is there, and no
    thread, CUDA context or question to CUDA has been started that a forked step could not
    redo; what it loaded is frozen out of the collector's passes."""
    # On a GPU machine even asking whether CUDA is there (the CUDA runtime's device count)
    # initializes its driver, which a forked child then cannot use: nothing may ask.
    probe = (
        "import torch, torch.cuda\n"
        "asked = []\n"
        "for name in ('is_available', 'device_count'):\n"
        "    setattr(torch.cuda, name, lambda *a, _n=name, **k: asked.append(_n))\n"
        "import gc, json, threading, agnews.tracking.preload as p\n"
        "print(json.dumps({'missing': [m for m in p.MODULES if m not in __import__('sys')"
        ".modules], 'threads': threading.active_count(), 'cuda': torch.cuda.is_initialized(),"
        " 'asked': asked, 'frozen': gc.get_freeze_count()}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300, check=True)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["missing"] == []
    assert facts["threads"] == 1 and facts["cuda"] is False and facts["asked"] == []
    assert facts["frozen"] > 100_000  # the libraries' objects, not walked by a step's collections


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="steps are forked on Linux")
def test_a_server_that_cannot_start_leaves_the_steps_to_new_interpreters_with_one_line(tmp_path):
    """Its socket goes in the temporary folder, and a UNIX socket's path has at most 107
    characters: with a TMPDIR that long, main still runs, each step a new interpreter."""
    long = tmp_path / ("t" * 100)
    long.mkdir()
    probe = ("from agnews.tracking import warm\n"
             "warm.serve_steps()\n"
             "warm.start_server('main')\n"
             "print(warm.forking())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, timeout=120, text=True,
                         env={**subprocess_env(), "TMPDIR": str(long)}, capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("main: each step starts a new interpreter")
    assert "TMPDIR" in lines[0]
