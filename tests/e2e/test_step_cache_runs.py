"""The step cache and crash resume through real `mlflow run` processes.

Runs a copy of the project in a temp folder (so a test can edit the code) against a fresh
tracking store, on a tiny random BERT and real AG News rows. The `first` fixture makes the
first run, as a user's first `mlflow run` would, each step in a process of its own (forked
from main's warm server, agnews.tracking.warm); each test then runs main as a later run of
that user would, with parameters or code edits of its own, so every test passes alone and in
any order. Those later mains run their steps inside main's
process (INLINE_STEPS), except where a step's own process is what a test is about; the forced
rerun checks that they log what the first, process-per-step main logged.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from runs import artifact_paths, make_store, mlflow_run_args
from support import INLINE_STEPS, copy_project

from agnews.tracking.step_cache import STEPS


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model, ag_news):
    tmp = tmp_path_factory.mktemp("cache")
    copy = copy_project(tmp / "project")
    store = make_store(tmp, "cache")
    base = {"data": ag_news, "model": tiny_model, "train_size": 40, "val_size": 12,
            "test_size": 24, "epochs": 2, "train_batch_size": 8, "learning_rate": 3e-3}
    return {"dir": copy, "store": store, "client": store.client,
            "experiment_id": store.experiment_id, "base": base}


def command(project, **params) -> list[str]:
    return mlflow_run_args("main", {**project["base"], **params}, project["dir"],
                           project["experiment_id"])


def env(project, inline: bool = True, **extra: str) -> dict[str, str]:
    """The copy's code first on the path; its steps inline unless `inline=False`."""
    return project["store"].env(PYTHONPATH=str(project["dir"]),
                                **(INLINE_STEPS if inline else {}), **extra)


def run_main(project, inline: bool = True, tmpdir: Path | None = None,
             **params) -> tuple[subprocess.CompletedProcess, dict]:
    """Run main (with its temporary files in `tmpdir`, if given); return the process and
    {step: (run id, cached)} from the new parent run."""
    before = {r.info.run_id for r in project["client"].search_runs([project["experiment_id"]])}
    proc = subprocess.run(command(project, **params), cwd=project["dir"],
                          env=env(project, inline, **({"TMPDIR": str(tmpdir)} if tmpdir else {})),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    new = [r for r in project["client"].search_runs([project["experiment_id"]])
           if r.info.run_id not in before]
    parent = next(r for r in new if "step.ingest.run_id" in r.data.tags)
    steps = {s: (parent.data.tags[f"step.{s}.run_id"],
                 parent.data.tags.get(f"step.{s}.cached") == "true") for s in STEPS}
    return proc, {"steps": steps, "new": new, "parent": parent}


def ran(result) -> list[str]:
    return [s for s, (_, cached) in result["steps"].items() if not cached]


@pytest.fixture(scope="module")
def first(project):
    """The first run of main with the base parameters: every step runs."""
    # its own temporary folder, short enough for the warm server's socket (agnews.tracking.warm)
    with tempfile.TemporaryDirectory(prefix="agnews-first-") as tmpdir:
        _, result = run_main(project, inline=False, tmpdir=Path(tmpdir))
        yield {**result, "tmpdir": Path(tmpdir)}


@contextlib.contextmanager
def edited(path, text: str):
    """`path` with `text` appended, restored afterwards (the copy's code, not the repo's)."""
    original = path.read_text()
    path.write_text(original + text)
    try:
        yield
    finally:
        path.write_text(original)


def cache_keys(project, result) -> dict[str, str]:
    return {s: project["client"].get_run(rid).data.tags["cache_key"]
            for s, (rid, _) in result["steps"].items()}


def test_first_run_runs_every_step(first):
    assert ran(first) == list(STEPS)
    parent = first["parent"]
    assert parent.info.run_name.startswith("main ")  # then the parameters that differ
    assert "train_size=40" in parent.info.run_name and "epochs" not in parent.info.run_name
    names = {project_step: run.info.run_name for run in first["new"]
             for project_step in [run.data.tags.get("step")] if project_step}
    assert names == {s: s for s in STEPS}
    # each step a process of its own, forked from main's warm server (agnews.tracking.warm)
    steps = [run for run in first["new"] if run.data.tags.get("step")]
    assert {run.data.tags["mlflow.project.backend"] for run in steps} == {"forked"}
    pids = {run.data.tags["process.pid"] for run in steps}
    assert len(pids) == len(STEPS) and parent.data.tags["process.pid"] not in pids
    assert all(run.data.metrics["peak_rss_mb"] > 50 for run in steps)
    # each step's scratch folder went with it, as its exit handlers ran (agnews.tracking.scratch)
    assert not list(first["tmpdir"].glob("agnews-step-*"))


def test_identical_rerun_reuses_every_step_and_starts_no_child(project, first):
    start = time.monotonic()
    proc, result = run_main(project)
    elapsed = time.monotonic() - start
    assert ran(result) == []
    assert len(result["new"]) == 1  # the parent only
    # the same cached work (a forced rerun of another test may have made newer runs of it)
    assert cache_keys(project, result) == cache_keys(project, first)
    for step, (run_id, _) in result["steps"].items():
        assert f"main: {step} reused {run_id} (cached)" in proc.stdout
    assert result["parent"].data.metrics["test_accuracy"] == \
        first["parent"].data.metrics["test_accuracy"]
    assert elapsed < 60, elapsed  # generous here; the README's figure is measured by hand


TIMINGS = ("epoch_seconds", "train_samples_per_second", "predict_rows_per_second",
           "peak_rss_mb")  # measured, not computed: they differ run to run, as does every
# parity_<runtime>_rows_per_second of the gate


def test_force_all_reruns_everything_and_reproduces_every_metric(project, first):
    """Forced, every step reruns (here inside main's process, where the first main forked
    each step from its warm server): the same parameters, tags, artifacts and metric values."""
    _, result = run_main(project, force="all")
    assert ran(result) == list(STEPS)
    client = project["client"]
    for step in STEPS:
        before, again = (client.get_run(r) for r in (first["steps"][step][0],
                                                     result["steps"][step][0]))
        # the same values, but the upstream run ids (every upstream step reran too)
        upstream = {k for k, v in before.data.params.items()
                    if v.startswith("runs:/") or k.endswith("_run")}
        assert set(before.data.params) == set(again.data.params), step
        assert {k: v for k, v in before.data.params.items() if k not in upstream} == {
            k: v for k, v in again.data.params.items() if k not in upstream}, step
        assert set(before.data.tags) == set(again.data.tags), step  # the values: pids, times
        assert (before.data.tags["mlflow.project.backend"],
                again.data.tags["mlflow.project.backend"]) == ("forked", "inline")
        assert set(artifact_paths(client, before.info.run_id)) == set(
            artifact_paths(client, again.info.run_id)), step
    with project["store"].tracking():  # the served model's signature, inferred in both
        import mlflow

        assert mlflow.models.get_model_info(f"runs:/{first['steps']['train'][0]}/model"
                                            ).signature == mlflow.models.get_model_info(
            f"runs:/{result['steps']['train'][0]}/model").signature
    for step in ("ingest", "tokenize", "train", "evaluate"):
        before = client.get_run(first["steps"][step][0]).data.metrics
        again = client.get_run(result["steps"][step][0]).data.metrics
        # MLflow's system/* metrics are sampled on a timer: a run shorter than the interval
        # (under load or not) may have none
        before, again = ({k: v for k, v in m.items() if not k.startswith("system/")}
                         for m in (before, again))
        assert set(before) == set(again), step
        for name in {n for n in before if not n.endswith("rows_per_second")} - set(TIMINGS):
            assert again[name] == pytest.approx(before[name], abs=1e-6), (step, name)
    first_train, train = first["steps"]["train"][0], result["steps"]["train"][0]
    for name in ("train_loss_step", "val_loss", "val_f1"):
        assert [m.value for m in client.get_metric_history(train, name)] == pytest.approx(
            [m.value for m in client.get_metric_history(first_train, name)], abs=1e-6)


def test_code_only_the_report_runs_reruns_only_the_report(project, first):
    """agnews/report/wording.py is imported by the report step alone."""
    with edited(project["dir"] / "agnews" / "report" / "wording.py", "\nUNUSED = 1\n"):
        _, result = run_main(project)
    assert ran(result) == ["report"]


def test_a_rerun_of_light_steps_alone_starts_them_as_new_interpreters(project, first):
    """With no step to run that loads torch, main forks nothing from its warm server, whose
    imports would take longer than the light steps' own (agnews.tracking.warm): the forced
    report starts as MLflow's runner starts a step."""
    _, result = run_main(project, inline=False, force="report")
    assert ran(result) == ["report"]
    report = project["client"].get_run(result["steps"]["report"][0])
    assert report.data.tags["mlflow.project.backend"] == "local"


def test_comments_and_docstrings_in_shared_code_rerun_nothing(project, first):
    """agnews/config.py is imported by every step: a comment or docstring there changes no
    step's code."""
    config = project["dir"] / "agnews" / "config.py"
    text = config.read_text()
    reworded = text.replace('"""Typed configuration', '"""Reworded: typed configuration', 1)
    assert reworded != text
    config.write_text(reworded)
    try:
        with edited(config, "\n# a comment about the configuration\n"):
            _, result = run_main(project)
    finally:
        config.write_text(text)
    assert ran(result) == []


def test_force_reruns_the_named_step_and_those_after_it(project, first):
    _, result = run_main(project, force="evaluate")
    assert ran(result) == ["evaluate", "register", "report"]


def test_a_failed_run_is_never_reused(project, first):
    client = project["client"]
    _, latest = run_main(project, report_lang="es")  # a parameter of the report alone
    report = latest["steps"]["report"][0]
    key = client.get_run(report).data.tags["cache_key"]
    for run in client.search_runs([project["experiment_id"]], f"tags.cache_key = '{key}'"):
        client.set_terminated(run.info.run_id, "FAILED")  # as if it had crashed
    _, result = run_main(project, report_lang="es")
    assert ran(result) == ["report"]
    assert result["steps"]["report"][0] != report


def test_a_changed_train_parameter_at_once_in_two_mains_runs_each_step_once(project, first):
    """A changed train parameter reruns train and what follows it, and reuses ingest and
    tokenize; two identical such mains at once: the second waits for each step the first is
    running, then reuses it: no shared checkpoint, no step run twice, both FINISHED."""
    params = {"learning_rate": 1e-3}  # train and every step after it have to run once
    client = project["client"]
    before = {r.info.run_id for r in client.search_runs([project["experiment_id"]])}
    procs = [subprocess.Popen(command(project, **params), cwd=project["dir"], env=env(project),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-3000:] for o in outputs]
    new = [r for r in client.search_runs([project["experiment_id"]])
           if r.info.run_id not in before]
    parents = [r for r in new if "step.ingest.run_id" in r.data.tags]
    children = [r for r in new if r.data.tags.get("step")]
    assert len(parents) == 2 and all(r.info.status == "FINISHED" for r in new)
    ran_once = ["train", "evaluate", "register", "report"]
    assert sorted(r.data.tags["step"] for r in children) == sorted(ran_once)  # each step once
    assert all("learning_rate=0.001" in p.info.run_name for p in parents)
    for step in ("ingest", "tokenize"):  # reused: the first main's work (or a forced rerun's)
        key = client.get_run(first["steps"][step][0]).data.tags["cache_key"]
        assert {client.get_run(p.data.tags[f"step.{step}.run_id"]).data.tags["cache_key"]
                for p in parents} == {key}, step
    assert any("main: train running" in o for o in outputs)
    for step in STEPS:  # both parents point at the one run of each step
        assert len({p.data.tags[f"step.{step}.run_id"] for p in parents}) == 1, step
    assert any("train waits for another run of the same step" in o for o in outputs)


def test_a_killed_train_resumes_from_its_last_complete_epoch(project):
    params = {"train_size": 400, "epochs": 3, "learning_rate": 1e-3}  # a few seconds per epoch
    # the train step in a process of its own, for the kill below
    proc = subprocess.Popen(command(project, **params), cwd=project["dir"],
                            env=env(project, inline=False), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    client, train = project["client"], None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        running = client.search_runs([project["experiment_id"]],
                                     "tags.step = 'train' and attributes.status = 'RUNNING'")
        if running and client.get_metric_history(running[0].info.run_id, "val_f1"):
            train = running[0]
            break
        time.sleep(0.2)
    assert train is not None, "train never finished its first epoch"
    # kill -9 the train process only: the pid its run recorded once it started
    # (agnews.tracking.stale), a process forked from main's warm server
    os.kill(int(client.get_run(train.info.run_id).data.tags["process.pid"]), signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    checkpoints = list((project["dir"] / ".checkpoints").glob("*/checkpoint.pt"))
    assert len(checkpoints) == 1
    killed = client.get_run(train.info.run_id)
    assert killed.info.status != "FINISHED"
    done_before = [m.value for m in client.get_metric_history(killed.info.run_id, "epoch_seconds")]

    rerun, result = run_main(project, **params)
    assert ran(result) == ["train", "evaluate", "register", "report"]
    assert "train: resuming from" in rerun.stderr + rerun.stdout
    resumed = result["steps"]["train"][0]
    history = client.get_metric_history(resumed, "val_f1")
    assert [m.step for m in history] == [1, 2, 3]  # no gap, no duplicate
    seconds = [m.value for m in client.get_metric_history(resumed, "epoch_seconds")]
    # the epochs done before the kill are replayed (same recorded duration), not retrained
    assert seconds[:len(done_before)] == done_before and len(done_before) < 3
    steps = [m.step for m in client.get_metric_history(resumed, "train_loss_step")]
    assert steps == sorted(set(steps)) and len(steps) >= 3
    assert not checkpoints[0].parent.exists()  # removed, with its folder, once the run finished


def test_ctrl_c_during_train_stops_main_and_its_forked_steps(project):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group: `mlflow run`,
    main, its warm server and the step forked from it. All of them end, main with an error,
    and the step's run is not left FINISHED."""
    params = {"train_size": 400, "epochs": 3, "learning_rate": 1e-3, "seed": 7}
    proc = subprocess.Popen(command(project, **params), cwd=project["dir"],
                            env=env(project, inline=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    client, train = project["client"], None
    deadline = time.monotonic() + 300
    while train is None and time.monotonic() < deadline and proc.poll() is None:
        for run in client.search_runs([project["experiment_id"]],
                                      "tags.step = 'train' and attributes.status = 'RUNNING'"):
            if client.get_metric_history(run.info.run_id, "train_loss_step") or \
                    client.get_metric_history(run.info.run_id, "val_f1"):
                train = run
        time.sleep(0.2)
    assert train is not None, "train never started training"
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # any process of the group still there?
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("a process of main's group outlived Ctrl-C")
    assert client.get_run(train.info.run_id).info.status != "FINISHED"


def test_a_main_killed_during_evaluate_leaves_no_run_running_after_the_next(project, first):
    """kill -9 of the whole `mlflow run` process group while evaluate runs leaves the parent
    and evaluate RUNNING; the next main reuses what finished, marks those two KILLED and says
    so in one line."""
    client = project["client"]
    before = {r.info.run_id for r in client.search_runs([project["experiment_id"]])}
    proc = subprocess.Popen(command(project, force="evaluate"), cwd=project["dir"],
                            env=env(project, inline=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    evaluate, deadline = None, time.monotonic() + 300
    while evaluate is None and time.monotonic() < deadline and proc.poll() is None:
        for run in client.search_runs([project["experiment_id"]],
                                      "tags.step = 'evaluate' and attributes.status = 'RUNNING'"):
            parent = client.get_run(run.data.tags["mlflow.parentRunId"])
            # the step's own process has started its run: its pid replaced main's
            if run.info.run_id not in before and \
                    run.data.tags.get("process.pid") != parent.data.tags.get("process.pid"):
                evaluate = run
        time.sleep(0.2)
    assert evaluate is not None, "evaluate never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    parent_id = evaluate.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent_id).info.status == "RUNNING"  # what a user saw in the UI

    rerun, result = run_main(project)
    assert ran(result) == []  # everything that finished is reused, the killed run is not
    lines = [x for x in rerun.stdout.splitlines() if "KILLED" in x]
    assert lines == [f"main: evaluate: marked 2 run(s) KILLED that a process which died left "
                     f"RUNNING ({evaluate.info.run_id}, {parent_id})"]
    assert client.get_run(evaluate.info.run_id).info.status == "KILLED"
    assert client.get_run(parent_id).info.status == "KILLED"
    assert cache_keys(project, result) == cache_keys(project, first)  # the same finished work
