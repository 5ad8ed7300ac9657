#!/usr/bin/env bash
# The team tracking server: `mlflow server` on a PostgreSQL backend store, with artifacts
# proxied by the server (clients upload and download through HTTP and need no access to the
# artifact folder), on loopback unless told otherwise. Runs in the foreground; Ctrl-C stops it.
#
#   deploy/team-server.sh                     # http://127.0.0.1:5000, no login
#   deploy/team-server.sh --auth              # the same with MLflow's logins (basic-auth)
#   MLFLOW_HOST=0.0.0.0 deploy/team-server.sh --auth --allowed-hosts mlflow.example.org:5000
#
# Beyond loopback the server must know who asks: --auth starts MLflow's basic-auth app, and
# --no-auth is for a server behind a proxy of your own that authenticates; without either it
# does not start. With --auth the first start generates the admin's password
# ($TEAM_SERVER_DIR/admin.password, mode 600; MLflow has no default one) and the key of the
# login forms' CSRF protection; `python -m agnews.tracking.team add-user NAME [--read-only]`
# then creates each teammate, with a password in a credentials file of their own.
#
# Other arguments go to `mlflow server` as they are (--workers, --allowed-hosts ...). Needs
# Debian's PostgreSQL (`sudo apt-get install postgresql`) and this project's pins (`pip install
# -r requirements.txt`: mlflow, psycopg, Flask-WTF). The first start creates the database role
# and the databases (the runs' and, with --auth, the logins'), as root or through
# `sudo -u postgres`.
#
# Settings, from the environment:
#   MLFLOW_HOST (127.0.0.1), MLFLOW_PORT (5000)   where the server listens
#   MLFLOW_DB (mlflow)                            the database, and the role that owns it
#   TEAM_SERVER_DIR (.team-server in the project) passwords and keys (mode 600)
#   ARTIFACTS_DIR ($TEAM_SERVER_DIR/artifacts)    where the server keeps every run's artifacts
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION (false)    MLflow's job runner for its GenAI features
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
db="${MLFLOW_DB:-mlflow}"
state="${TEAM_SERVER_DIR:-$here/.team-server}"
artifacts="${ARTIFACTS_DIR:-$state/artifacts}"

die() { echo "team-server: error: $*" >&2; exit 1; }

auth=""
args=()
for arg in "$@"; do
  case "$arg" in
    --auth) auth=on ;;
    --no-auth) auth=off ;;
    *) args+=("$arg") ;;
  esac
done
case "$host" in
  127.*|localhost|::1) ;;
  *) [[ -n "$auth" ]] || die "MLFLOW_HOST=$host opens the server beyond loopback, where anyone \
who reaches the port could read, delete and promote: add --auth for MLflow's logins (or \
--no-auth if a proxy of your own authenticates every request)" ;;
esac

[[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] \
  || die "MLFLOW_DB='$db' is not a plain PostgreSQL name: use lower-case letters, digits and _"
command -v pg_lsclusters >/dev/null \
  || die "PostgreSQL is not installed: run 'sudo apt-get install postgresql' (Debian/Ubuntu)"
command -v mlflow >/dev/null \
  || die "mlflow is not on PATH: activate the project's environment (pip install -r requirements.txt)"

# Debian runs PostgreSQL as the `postgres` system user; cluster commands and the superuser's
# psql go through it (cd / so it never tries to read a folder it cannot enter).
as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then (cd / && runuser -u postgres -- "$@")
  else (cd / && sudo -u postgres "$@"); fi
}

read -r version cluster pg_port status _ < <(pg_lsclusters -h | head -n 1) \
  || die "no PostgreSQL cluster found: create one with 'sudo pg_createcluster 15 main --start'"
if [[ "$status" != online* ]]; then
  echo "team-server: starting PostgreSQL $version/$cluster on port $pg_port"
  if [[ "$(id -u)" == 0 ]]; then pg_ctlcluster "$version" "$cluster" start
  else sudo pg_ctlcluster "$version" "$cluster" start; fi
fi

# One password per database role, kept beside the artifacts; libpq reads it from PGPASSFILE,
# so it never appears on a command line or in the server's backend URI.
umask 077
mkdir -p "$state" "$artifacts"
[[ -s "$state/$db.password" ]] \
  || python -c "import secrets; print(secrets.token_hex(24))" > "$state/$db.password"
password="$(cat "$state/$db.password")"
printf '127.0.0.1:%s:%s:%s:%s\n' "$pg_port" "$db" "$db" "$password" > "$state/$db.pgpass"

psql_admin() { as_postgres psql -X -q -p "$pg_port" -v ON_ERROR_STOP=1 "$@"; }
if [[ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$db'")" ]]; then
  psql_admin -c "CREATE ROLE $db LOGIN PASSWORD '$password'"
else
  psql_admin -c "ALTER ROLE $db PASSWORD '$password'"  # the file is the truth
fi
create_database() {
  if [[ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]]; then
    psql_admin -c "CREATE DATABASE $1 OWNER $db"
    echo "team-server: created database $1"
  fi
}
create_database "$db"

if [[ "$auth" == on ]]; then
  # The logins live in a database of their own (MLflow's auth app migrates its own tables).
  # A checked login is cached for 60 s: without it each request pays a PBKDF2 hash (about a
  # second per request on 2 cores, minutes for one main); a changed password or a removed
  # user may still pass on another server worker for up to that long.
  create_database "${db}_auth"
  secret() { [[ -s "$state/$1" ]] || python -c "import secrets; print(secrets.token_urlsafe(32))" > "$state/$1"; }
  secret admin.password
  secret flask.secret
  printf '127.0.0.1:%s:%s:%s:%s\n' "$pg_port" "${db}_auth" "$db" "$password" >> "$state/$db.pgpass"
  cat > "$state/auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql://$db@127.0.0.1:$pg_port/${db}_auth
admin_username = admin
admin_password = $(cat "$state/admin.password")
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
  export MLFLOW_AUTH_CONFIG_PATH="$state/auth.ini"
  MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$state/flask.secret")"
  export MLFLOW_FLASK_SERVER_SECRET_KEY
  args=(--app-name basic-auth "${args[@]}")
  echo "team-server: logins on (basic-auth); the admin's password is in $state/admin.password;" \
       "add teammates with: python -m agnews.tracking.team add-user NAME"
fi
[[ "$auth" == off ]] && echo "team-server: no login (--no-auth): every request must pass" \
  "through a proxy that authenticates it"

# MLflow's server otherwise starts a job runner and a consumer process per job kind for its
# GenAI features (trace and session scorers, prompt optimization, GenAI evaluation), which no
# step of this project uses: eight more processes, each importing MLflow (docs/team.md has
# what they cost). Set it to true to have them.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

echo "team-server: http://$host:$port  (backend postgresql://$db@127.0.0.1:$pg_port/$db," \
     "artifacts in $artifacts)"
export PGPASSFILE="$state/$db.pgpass"
exec mlflow server \
  --backend-store-uri "postgresql://$db@127.0.0.1:$pg_port/$db" \
  --serve-artifacts --artifacts-destination "$artifacts" \
  --host "$host" --port "$port" "${args[@]}"
