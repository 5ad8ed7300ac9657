#!/usr/bin/env bash
# Run the workflow on Kubernetes with `mlflow run -b kubernetes`, against the team tracking
# server. MLflow's Kubernetes backend takes only projects with a `docker_env`, while this
# project's one environment is conda.yaml: this script sends a copy of the project whose
# MLproject names the image built from conda.yaml (deploy/kubernetes/Dockerfile) instead.
# Not run here: this machine reaches no cluster and no container registry.
#
#   docker build -f deploy/kubernetes/Dockerfile -t "$IMAGE" . && docker push "$IMAGE"
#   IMAGE=registry.example.com/agnews/base:1 MLFLOW_TRACKING_URI=http://mlflow.internal:5000 \
#     deploy/kubernetes/submit.sh -e main -P epochs=3
#
# Arguments go to `mlflow run` (entry point, -P parameters). Edit backend-config.json first
# (kube-context, repository-uri: where MLflow pushes each run's image). Needs docker and the
# `docker` and `kubernetes` Python packages on this side. `--stage-only DIR` writes the copy
# to DIR and stops (what the tests check).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
die() { echo "submit: error: $*" >&2; exit 1; }

[[ -n "${IMAGE:-}" ]] || die "IMAGE is not set: build deploy/kubernetes/Dockerfile, push it, \
and pass its name as IMAGE=<registry>/<name>:<tag>"

stage_to() {
  mkdir -p "$1"
  cp "$here"/{MLproject,conda.yaml,requirements.txt} "$1"/
  cp -r "$here"/steps "$here"/agnews "$1"/
  find "$1" -name __pycache__ -prune -exec rm -rf {} +
  python - "$1/MLproject" "$IMAGE" <<'PY'
import sys
path, image = sys.argv[1:]
text = open(path).read()
assert "conda_env: conda.yaml\n" in text, "MLproject no longer names conda.yaml"
open(path, "w").write(text.replace("conda_env: conda.yaml\n",
                                   f"docker_env:\n  image: {image}\n"))
PY
}

if [[ "${1:-}" == "--stage-only" ]]; then
  [[ -n "${2:-}" ]] || die "--stage-only needs a folder"
  stage_to "$2"; exit 0
fi
case "${MLFLOW_TRACKING_URI:-}" in
  http://*|https://*) ;;
  *) die "MLFLOW_TRACKING_URI='${MLFLOW_TRACKING_URI:-}' is not a server the pods can reach: \
start deploy/team-server.sh where the cluster reaches it and pass its http:// address" ;;
esac
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
stage_to "$stage"
cd "$here"  # backend-config.json names the job template relative to the project
mlflow run "$stage" -b kubernetes --backend-config deploy/kubernetes/backend-config.json "$@"
