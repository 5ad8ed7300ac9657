"""Teammates' credentials for the team server's login: the file MLflow's client reads, written
readable by its owner alone, and the command's one-line refusals (the server itself is tested
in tests/e2e/test_team_scale.py)."""
from __future__ import annotations

import stat

import pytest
from mlflow.utils.credentials import read_mlflow_creds

from agnews.tracking import team


def test_the_credentials_file_is_the_one_mlflows_client_reads(tmp_path, monkeypatch):
    path = tmp_path / ".mlflow" / "credentials"
    team.write_secret(path, team.credentials_text("alice", "s3cr3t-Value_1"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    creds = read_mlflow_creds()
    assert (creds.username, creds.password) == ("alice", "s3cr3t-Value_1")


def test_a_secret_file_is_private_from_its_first_byte_even_when_it_existed(tmp_path):
    path = tmp_path / "users" / "bob.credentials"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    team.write_secret(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("name, message", [
    ("Bad Name", "user name 'Bad Name' is not usable"),
    ("alice", "no admin password at"),
])
def test_add_user_refuses_with_one_line(tmp_path, capsys, name, message):
    with pytest.raises(SystemExit) as stop:
        team.main(["add-user", name, "--state", str(tmp_path), "--server", "http://127.0.0.1:9"])
    assert stop.value.code != 0
    assert str(stop.value.code).startswith(f"team: error: {message}")
    assert len(str(stop.value.code).splitlines()) == 1
    assert not (tmp_path / "users").exists()
