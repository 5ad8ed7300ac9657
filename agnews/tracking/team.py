"""Teammates on the team tracking server's login (MLflow's basic-auth app, which
`deploy/team-server.sh --auth` starts): one command adds a user, with a generated password
written to a credentials file in MLflow's own format, and the right to run and register.

    python -m agnews.tracking.team add-user alice               # runs, registers, moves aliases
    python -m agnews.tracking.team add-user bob --read-only     # reads everything, writes nothing

Every logged-in user reads every experiment and model (the server's `default_permission`);
an editor is also in the role `editors`, which may edit every experiment and registered model,
so a teammate can run `main` into the shared experiments and register into the shared model.
The admin's password comes from the server's state folder (`TEAM_SERVER_DIR`, where the
script generated it); it is sent to the server only, never printed or logged.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import warnings
from pathlib import Path

from agnews import PROJECT_DIR
from agnews.errors import UserError
from agnews.tracking.inline import environ

EDITORS = "editors"
WORKSPACE = "default"  # MLflow's one workspace when workspaces are not in use
EDITED = ("experiment", "registered_model")
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")


def credentials_text(username: str, password: str) -> str:
    """MLflow's credentials file (`~/.mlflow/credentials`), which its client reads."""
    return (f"[mlflow]\nmlflow_tracking_username = {username}\n"
            f"mlflow_tracking_password = {password}\n")


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner alone, from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # the mode above applies to a new file only; this one is empty
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def editors_role(client) -> int:
    """The role that may edit every experiment and registered model (created once)."""
    for role in client.list_roles(WORKSPACE):
        if role.name == EDITORS:
            return role.id
    role = client.create_role(WORKSPACE, EDITORS, "teammates who run, register and promote")
    for resource in EDITED:
        client.add_role_permission(role.id, resource, "*", "EDIT")
    return role.id


def add_user(server: str, state: Path, username: str, read_only: bool) -> Path:
    """Create `username` on `server` with a new password, an editor unless `read_only`;
    returns the credentials file written for them."""
    from mlflow.exceptions import MlflowException

    with warnings.catch_warnings():  # its module imports the server's, which warns of a
        warnings.simplefilter("ignore")  # Starlette deprecation: nothing a user can act on
        from mlflow.server.auth.client import AuthServiceClient

    if not USERNAME.match(username):
        raise UserError(f"user name '{username}' is not usable: use 2-32 lower-case letters, "
                        "digits, '.', '_' or '-', starting with a letter")
    admin_file = state / "admin.password"
    if not admin_file.is_file():
        raise UserError(f"no admin password at {admin_file}: start the server with "
                        "deploy/team-server.sh --auth (TEAM_SERVER_DIR as it was) first")
    password = secrets.token_urlsafe(24)
    # MLflow's client takes credentials from the environment (or ~/.mlflow/credentials, the
    # user's own): the admin's for these calls only.
    admin = {"MLFLOW_TRACKING_USERNAME": "admin",
             "MLFLOW_TRACKING_PASSWORD": admin_file.read_text().strip()}
    with environ(admin):
        client = AuthServiceClient(server)
        try:
            client.create_user(username, password)
            if not read_only:
                client.assign_role(username, editors_role(client))
        except MlflowException as error:  # its message goes on with the database's own words
            reason = error.message.split(" Error: (")[0].splitlines()[0]
            raise UserError(f"the server at {server} refused: {reason}") from None
    path = state / "users" / f"{username}.credentials"
    write_secret(path, credentials_text(username, password))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agnews.tracking.team",
                                     description="Users of the team tracking server's login.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user", help="create a teammate with a generated password")
    add.add_argument("username")
    add.add_argument("--read-only", action="store_true", help="may read, not write")
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    add.add_argument("--server", default=tracking if tracking.startswith("http") else
                     f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}")
    add.add_argument("--state", type=Path, default=Path(os.environ.get(
        "TEAM_SERVER_DIR", PROJECT_DIR / ".team-server")))
    args = parser.parse_args(argv)
    try:
        path = add_user(args.server, args.state, args.username, args.read_only)
    except UserError as error:
        sys.exit(f"team: error: {error}")
    role = "read-only" if args.read_only else "editor"
    print(f"team: {args.username} ({role}) can log in to {args.server}; their password is in "
          f"{path} (mode 600), in MLflow's credentials format: they copy it to "
          "~/.mlflow/credentials, or export MLFLOW_TRACKING_USERNAME and "
          "MLFLOW_TRACKING_PASSWORD")


if __name__ == "__main__":
    main()
