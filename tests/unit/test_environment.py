"""conda.yaml and requirements.txt pin the same packages, and this environment matches them."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys

import yaml
from support import ROOT


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", line), line


def test_conda_yaml_pins_python_and_the_same_packages():
    spec = yaml.safe_load((ROOT / "conda.yaml").read_text())
    deps = spec["dependencies"]
    assert "python=3.11.7" in deps  # exact: --env-manager virtualenv/uv build from this too
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    conda_pins = dict(p.lower().split("==") for p in pip)
    assert conda_pins == requirement_pins()


def test_installed_versions_match_the_pins():
    for name, version in requirement_pins().items():
        installed = importlib.metadata.version(name)
        assert installed.split("+")[0] == version, \
            f"{name}: {installed} installed, {version} pinned"


def test_the_code_imports_only_pinned_third_party_packages():
    pins = requirement_pins()
    module_to_dist = {"sklearn": "scikit-learn", "huggingface_hub": "huggingface-hub",
                      "yaml": "pyyaml"}
    imported = set()
    for path in [*(ROOT / "steps").glob("*.py"), *(ROOT / "agnews").rglob("*.py")]:
        # the import statements themselves (a docstring's line may begin with "from the")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    for module in imported - set(sys.stdlib_module_names) - {"steps", "agnews"}:
        dist = module_to_dist.get(module, module)
        assert dist in pins, f"the code imports {module}, which requirements.txt does not pin"

