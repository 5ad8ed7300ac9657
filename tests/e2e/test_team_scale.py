"""Team scale through real processes: the team tracking server (`deploy/team-server.sh --auth`:
`mlflow server` on PostgreSQL with proxied artifacts and MLflow's logins) and `main` runs
started at once by a teammate with an editor's login (`python -m agnews.tracking.team
add-user`). Without a login, with a wrong password and as a read-only teammate the server
refuses what it must, and no password or key reaches the tracking store, the artifacts or the
logs.

Three `main` runs with different seeds start together against the server, and two against a
SQLite file: every run FINISHED, every metric and artifact present. Each main runs its steps
inside its own process (INLINE_STEPS): the writers that meet at the store are the mains. Then
`predict` and `mlflow models serve` read the champion those runs registered, through the
server only. PostgreSQL comes from Debian's packages (.ci/run installs and starts it); outside
CI these server tests are skipped where it is absent, in CI its absence is a failure.
"""
from __future__ import annotations

import configparser
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from runs import EPOCH_METRICS, artifact_paths, mlflow_run_args
from serving import ask_served_model
from support import INLINE_STEPS, ROOT, copy_project, subprocess_env
from team_server import TeamServer, as_postgres, cluster_port
from test_serve import check_predictions

from agnews.tracking.inline import environ
from agnews.tracking.step_cache import STEPS

# registered whatever a tiny random model scores, so three registers meet at the registry
BASE = {"train_size": 40, "val_size": 12, "test_size": 24, "epochs": 2, "train_batch_size": 8,
        "learning_rate": 3e-3, "min_test_accuracy": 0, "min_test_f1": 0}
NAME = "agnews-classifier"


def add_user(env: dict, name: str, *flags: str) -> str:
    """A teammate created as the README says; returns the password from their credentials."""
    proc = subprocess.run([sys.executable, "-m", "agnews.tracking.team", "add-user", name,
                           *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    credentials = configparser.ConfigParser()
    credentials.read(Path(env["TEAM_SERVER_DIR"]) / "users" / f"{name}.credentials")
    assert credentials["mlflow"]["mlflow_tracking_username"] == name
    return credentials["mlflow"]["mlflow_tracking_password"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`deploy/team-server.sh --auth` on a database of its own, as a user starts it, with an
    editor (alice, whose login this module's clients use) and a read-only teammate (bob)."""
    team = TeamServer(tmp_path_factory.mktemp("team"), "--auth")
    try:
        team.start()
        users = {"alice": add_user(team.env, "alice"),
                 "bob": add_user(team.env, "bob", "--read-only")}
        login = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": users["alice"]}
        with environ(login):  # this module's own clients are alice too
            yield {"url": team.url, "artifacts": team.artifacts, "client": MlflowClient(team.url),
                   "log": team.log, "tmp": team.tmp, "db": team.db, "users": users,
                   "login": login, "state": team.state, "processes": team.processes}
    finally:
        team.drop()


def start_main(cwd, env, seed, data, model) -> subprocess.Popen:
    args = mlflow_run_args("main", {**BASE, "data": data, "model": model, "seed": seed}, cwd)
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def mains_at_once(cwd, env, seeds, data, model) -> tuple[float, list[str]]:
    """Start one `main` per seed together; wait for all; every one must succeed. Returns the
    wall time and what each printed."""
    start = time.monotonic()
    processes = [start_main(cwd, env, seed, data, model) for seed in seeds]
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    return time.monotonic() - start, outputs


def parent_runs(client) -> list:
    return [r for r in client.search_runs(["0"]) if "mlflow.parentRunId" not in r.data.tags]


def check_nothing_lost(client, parents, seeds) -> None:
    """Each parent and its six step runs FINISHED, none shared between parents, every epoch
    metric at every epoch, and the same metric names (but the timer-sampled system/*) and
    artifact files in every run of a step up to register (a write lost to a concurrent writer
    shows as a difference)."""
    assert sorted(int(p.data.params["seed"]) for p in parents) == sorted(seeds)
    steps = {}
    for parent in parents:
        assert parent.info.status == "FINISHED", parent.info.run_name
        assert "test_accuracy" in parent.data.metrics
        for step in STEPS:
            child = client.get_run(parent.data.tags[f"step.{step}.run_id"])
            assert child.info.status == "FINISHED", (parent.info.run_name, step)
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            steps.setdefault(step, []).append(child)
    for step, runs in steps.items():
        assert len({r.info.run_id for r in runs}) == len(parents), step
        if step == "register":  # what it logs depends on the outcome: checked by the registry test
            continue
        # system/* metrics are sampled on a timer: a step shorter than the interval has none
        names = [{m for m in r.data.metrics if not m.startswith("system/")} for r in runs]
        files = [set(artifact_paths(client, r.info.run_id)) for r in runs]
        assert all(n == names[0] for n in names), (step, names)
        assert all(f == files[0] for f in files), (step, files)
        assert files[0], step
    for train in steps["train"]:
        for name in EPOCH_METRICS:
            history = client.get_metric_history(train.info.run_id, name)
            assert [m.step for m in history] == [1, 2], name
    for report in steps["report"]:
        assert "report/report.html" in artifact_paths(client, report.info.run_id)


@pytest.fixture(scope="module")
def three_on_server(server, tiny_model, ag_news):
    """Three mains with different seeds started together against the team server, with a
    teammate's login."""
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": server["url"], **server["login"]}
    seeds = [21, 22, 23]
    wall, outputs = mains_at_once(ROOT, {**env, **INLINE_STEPS}, seeds, ag_news, tiny_model)
    return {"seeds": seeds, "wall": wall, "env": env, "outputs": outputs,
            "parents": parent_runs(server["client"])}


def test_three_mains_at_once_against_the_server_lose_nothing(server, three_on_server):
    client = server["client"]
    check_nothing_lost(client, three_on_server["parents"], three_on_server["seeds"])
    # artifacts went through the server into its artifact folder, not into a local mlruns/
    for parent in three_on_server["parents"]:
        assert parent.info.artifact_uri.startswith("mlflow-artifacts:/")
        train = client.get_run(parent.data.tags["step.train.run_id"])
        on_disk = server["artifacts"] / train.info.artifact_uri.split("mlflow-artifacts:/", 1)[1]
        assert (on_disk / "plots" / "loss_curves.png").is_file()
    print(f"three mains at once against the team server: {three_on_server['wall']:.0f} s")


def test_three_registers_at_once_leave_one_champion(server, three_on_server):
    client = server["client"]
    versions = client.search_model_versions(f"name='{NAME}'")
    registered = [p for p in three_on_server["parents"] if p.data.tags["registered"] == "true"]
    assert len(versions) == len(registered) >= 1
    aliases = [client.get_model_version(NAME, v.version).aliases for v in versions]
    assert sum("champion" in a for a in aliases) == 1, aliases  # (search leaves aliases out)
    champion = client.get_model_version_by_alias(NAME, "champion")
    outcomes = sorted(client.get_run(p.data.tags["step.register.run_id"]).data.tags["outcome"]
                      for p in three_on_server["parents"])
    assert outcomes.count("first") == 1, outcomes  # one register found an empty registry
    assert champion.run_id in {p.data.tags["step.train.run_id"] for p in registered}


def test_predict_and_serve_read_the_champion_through_the_server(server, three_on_server,
                                                                 ag_news, tmp_path):
    source = tmp_path / "texts.csv"  # six rows of AG News's own layout (no header)
    source.write_text("".join((ag_news / "test.csv").read_text().splitlines(True)[:6]))
    output = tmp_path / "predictions.csv"
    proc = subprocess.run(
        mlflow_run_args("predict", {"input": source, "output": output}), cwd=ROOT,
        env=three_on_server["env"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    predicted = pd.read_csv(output)
    assert len(predicted) == 6 and predicted["confidence"].between(0, 1).all()
    run_id = re.findall(r"Run \(ID '([0-9a-f]+)'\) succeeded", proc.stdout + proc.stderr)[-1]
    predict_run = server["client"].get_run(run_id)
    assert "predictions.csv" in {a.path for a in server["client"].list_artifacts(run_id)}
    assert predict_run.info.artifact_uri.startswith("mlflow-artifacts:/")
    check_predictions(ask_served_model(f"models:/{NAME}@champion", three_on_server["env"],
                                       server["tmp"]))
    # the monitor, too, reads the champion and its lineage through the server with the login
    proc = subprocess.run(mlflow_run_args("monitor", {"input": output}), cwd=ROOT,
                          env=three_on_server["env"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "monitor: batch 1 of agnews-classifier" in proc.stdout


def test_the_server_starts_no_job_runners(server):
    """MLflow's job runner and its consumers (for GenAI features no step uses) stay off:
    the server is `mlflow server`, uvicorn and its workers (deploy/team-server.sh)."""
    running = server["processes"]()
    assert any("mlflow server" in args for args in running), running
    assert not [args for args in running if "mlflow.server.jobs" in args or "huey" in args], \
        running


def test_the_server_lets_in_only_its_team(server):
    search = f"{server['url']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(search, timeout=30).status_code == 401
    assert requests.get(search, auth=("alice", "not-her-password"), timeout=30).status_code == 401
    assert requests.get(search, auth=("alice", server["users"]["alice"]),
                        timeout=30).status_code == 200
    state = server["state"]
    admin = (state / "admin.password").read_text().strip()
    assert len(admin) >= 32 and admin not in ("password", "password1234")
    assert requests.get(search, auth=("admin", "password1234"), timeout=30).status_code == 401
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in ("admin.password", "flask.secret", "auth.ini", "users/alice.credentials"):
        assert stat.S_IMODE((state / path).stat().st_mode) == 0o600, path


def test_a_read_only_teammate_reads_but_cannot_delete_or_promote(server, three_on_server,
                                                                 monkeypatch):
    client = server["client"]
    champion = client.get_model_version_by_alias(NAME, "champion")
    other = next(v.version for v in client.search_model_versions(f"name='{NAME}'")
                 if v.version != champion.version)
    parent = three_on_server["parents"][0]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server["users"]["bob"])
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"  # bob reads
    with pytest.raises(MlflowException, match="403"):
        client.delete_run(parent.info.run_id)
    with pytest.raises(MlflowException, match="403"):
        client.set_registered_model_alias(NAME, "champion", other)
    with pytest.raises(MlflowException, match="403"):
        client.create_run(parent.info.experiment_id)
    monkeypatch.undo()  # alice again: nothing bob tried took effect
    assert client.get_run(parent.info.run_id).info.lifecycle_stage == "active"
    assert client.get_model_version_by_alias(NAME, "champion").version == champion.version


def test_no_secret_reaches_the_store_the_artifacts_or_the_logs(server, three_on_server):
    """Every password and key of the server and its users, searched for in a dump of the
    tracking database (every run's parameters, tags and metrics), every artifact file, the
    server's log and what the three mains printed."""
    state, db = server["state"], server["db"]
    secrets = [server["users"]["alice"], server["users"]["bob"],
               *((state / f).read_text().strip() for f in
                 ("admin.password", "flask.secret", f"{db}.password"))]
    dump = as_postgres("pg_dump", "-p", cluster_port(), db)
    assert dump.returncode == 0 and "test_accuracy" in dump.stdout, dump.stderr
    texts = {"database": dump.stdout, "server log": server["log"].read_text(),
             **{f"main {i}": out for i, out in enumerate(three_on_server["outputs"])}}
    files = [f for f in server["artifacts"].rglob("*") if f.is_file()]
    assert len(files) > 50  # the runs' artifacts are there to search
    for secret in secrets:
        assert len(secret) >= 24
        for where, text in texts.items():
            assert secret not in text, where
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_beyond_loopback_without_a_login_the_server_script_refuses_with_one_line(tmp_path):
    env = {**subprocess_env(), "MLFLOW_HOST": "0.0.0.0", "TEAM_SERVER_DIR": str(tmp_path / "s")}
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "team-server.sh"), "--workers", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("team-server: error: MLFLOW_HOST=0.0.0.0 opens the server beyond "
                           "loopback") and "add --auth" in line and "--no-auth" in line
    assert not (tmp_path / "s").exists()  # nothing created


def test_two_mains_at_once_against_a_new_sqlite_store_lose_nothing(tmp_path, tiny_model,
                                                                  ag_news):
    """As the README says: create the SQLite file once (`mlflow db upgrade`), then start runs
    at once, with MLflow's default tracking store and default experiment."""
    project = copy_project(tmp_path / "project")
    env = subprocess_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", "sqlite:///mlflow.db"],
                   cwd=project, env=env, check=True, capture_output=True)
    seeds = [31, 32]
    mains_at_once(project, {**env, **INLINE_STEPS}, seeds, ag_news, tiny_model)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    check_nothing_lost(client, parent_runs(client), seeds)
    assert (project / "mlruns").is_dir()  # the default store's artifacts, in the project


def test_a_bad_database_name_stops_the_server_script_with_one_line(tmp_path):
    env = {**subprocess_env(), "MLFLOW_DB": "team-db; drop", "TEAM_SERVER_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "team-server.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "team-server: error: MLFLOW_DB='team-db; drop' is not a plain PostgreSQL name: use "
        "lower-case letters, digits and _"]
    assert not any(tmp_path.iterdir())  # nothing created


def test_a_sweep_keeps_its_study_in_the_teams_postgresql(server, tiny_model, ag_news, tmp_path):
    """As the README says: a database of the team's PostgreSQL for Optuna (its tables must not
    share MLflow's), its URL without the password, which libpq reads from PGPASSFILE."""
    import optuna

    db, port = server["db"], cluster_port()
    created = as_postgres("createdb", "-p", port, "-O", db, f"{db}_optuna")
    assert created.returncode == 0, created.stderr
    password = (server["tmp"] / "state" / f"{db}.password").read_text().strip()
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{port}:*:{db}:{password}\n")
    pgpass.chmod(0o600)
    storage = f"postgresql+psycopg://{db}@127.0.0.1:{port}/{db}_optuna"
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": server["url"], "PGPASSFILE": str(pgpass),
           **INLINE_STEPS, **server["login"]}
    cwd = copy_project(tmp_path / "project")
    args = mlflow_run_args("sweep", {
        "data": ag_news, "model": tiny_model, "train_size": 40, "val_size": 12,
        "test_size": 24, "n_trials": 2, "study": "team", "storage": storage,
        "space": "learning_rate=1e-4:1e-2:log epochs=1", "registered_model": f"sweep-{db}",
        "min_test_accuracy": 0, "min_test_f1": 0}, ".")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (cwd / ".sweeps").exists()  # no journal file: the study is in the database
    os.environ["PGPASSFILE"] = str(pgpass)
    try:
        study = optuna.load_study(study_name="team", storage=storage)
    finally:
        del os.environ["PGPASSFILE"]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    parent = server["client"].get_run(
        re.findall(r"Run \(ID '([0-9a-f]+)'\) succeeded", proc.stderr)[-1])
    assert parent.data.tags["sweep.storage"] == storage and parent.info.status == "FINISHED"
    assert parent.data.tags["best_run"] == study.best_trial.user_attrs["run_id"]
