"""The project folder `main` runs its steps from, also inside a Kubernetes image."""
from __future__ import annotations

from pathlib import Path

import yaml

from agnews import PROJECT_DIR


def child_project(root: Path = PROJECT_DIR) -> Path:
    """The folder main runs its steps from: the project itself, unless its MLproject names a
    `docker_env`. That is the copy `deploy/kubernetes/submit.sh` sends to a cluster (MLflow's
    Kubernetes backend takes only Docker projects): main then already runs inside the image,
    where MLflow would try to start Docker again for every step. The steps then run from
    `.in-image/`: the same MLproject without `docker_env`, beside links to the code."""
    spec = yaml.safe_load((root / "MLproject").read_text())
    if "docker_env" not in spec:
        return root
    folder = root / ".in-image"
    folder.mkdir(exist_ok=True)
    spec.pop("docker_env")
    (folder / "MLproject").write_text(yaml.safe_dump(spec, sort_keys=False))
    for name in ("steps", "agnews"):
        if not (folder / name).exists():
            (folder / name).symlink_to(root / name, target_is_directory=True)
    return folder
