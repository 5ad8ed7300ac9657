"""How a step process ends (`agnews.cli.run_step`): without Python's last garbage collections
over everything it imported, but with every exit handler run, its output flushed and its exit
code kept. Each case is a real Python process, since what is checked happens as one exits."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from support import subprocess_env

# An object in a reference cycle, left for the collections at exit to find: its `__del__`
# prints only if they run over it. The exit handler stands for MLflow's and the others'.
PROBE = textwrap.dedent("""
    import atexit, gc, sys
    from agnews.cli import run_step
    from agnews.errors import UserError

    class Cycle:
        def __init__(self):
            self.me = self
        def __del__(self):
            print("collected at exit", flush=True)

    def main(argv):
        gc.disable()  # so that only the collections at exit could reach the cycle
        Cycle()
        atexit.register(print, "exit handlers ran")
        print("step output")  # left in the buffer: the exit must flush it
        if argv == ["fail"]:
            raise UserError("bad value: pass another")

    if sys.argv[1] == "plain":
        main(sys.argv[2:])
    else:
        run_step("probe", main, sys.argv[2:])
""")


def end_of(tmp_path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "probe.py"
    script.write_text(PROBE, encoding="utf-8")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


def test_a_plain_process_collects_its_cycles_at_exit(tmp_path):
    """The control: without run_step, the collections at exit do reach the cycle."""
    done = end_of(tmp_path, "plain")
    assert done.returncode == 0, done.stderr
    assert "collected at exit" in done.stdout


@pytest.mark.parametrize("args, code, error", [
    ([], 0, ""),
    (["fail"], 2, "probe: error: bad value: pass another"),
], ids=["success", "user-error"])
def test_a_step_process_skips_the_collections_at_exit_and_keeps_the_rest(tmp_path, args, code,
                                                                          error):
    done = end_of(tmp_path, "step", *args)
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines() == ["step output", "exit handlers ran"]
    assert error in done.stderr
