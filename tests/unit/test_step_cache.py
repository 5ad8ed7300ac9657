"""Step cache keys: which code each step runs, hashed by syntax, and how keys combine."""
from __future__ import annotations

import dataclasses
import shutil
import threading

import pytest
from support import ROOT

from agnews.config import (
    DataConfig,
    EvalConfig,
    RegisterConfig,
    ReportConfig,
    TokenizeConfig,
    TrainConfig,
)
from agnews.errors import UserError
from agnews.tracking.fingerprint import fingerprint
from agnews.tracking.step_cache import (
    STEPS,
    UPSTREAM,
    cache_key,
    code_syntax,
    forced_steps,
    hash_code,
    source_files,
    step_keys,
)


def names(step, root=ROOT):
    return {str(p.relative_to(root)) for p in source_files(step, root)}


def test_source_files_follow_imports_into_the_library():
    report = names("report")
    assert {"steps/report.py", "steps/__init__.py", "agnews/__init__.py",
            "agnews/report/__init__.py", "agnews/report/wording.py", "agnews/report/content.py",
            "agnews/report/conclusions.py", "agnews/report/facts.py",
            "agnews/tracking/runs.py", "agnews/tracking/lineage.py"} <= report
    train = names("train")
    assert {"steps/train.py", "agnews/training/loop.py", "agnews/training/checkpoint.py",
            "agnews/model/batching.py", "agnews/model/precision.py", "agnews/model/device.py",
            "agnews/model/logged_model.py", "agnews/training/plots.py",
            "agnews/model/served.py",  # the logged model's code, from logged_model.model_code
            "agnews/evaluation/metrics.py", "agnews/config.py"} <= train
    # `from agnews.data import plots` names a module, not only the package
    assert "agnews/data/plots.py" in names("ingest")
    for step in STEPS:
        if step != "report":
            assert not {n for n in names(step) if n.startswith("agnews/report/")}, step
    assert not {n for n in names("ingest") if n.startswith(("agnews/model/", "agnews/training/"))}


def test_a_module_only_the_report_uses_is_in_the_reports_sources_only():
    users = [s for s in STEPS if "agnews/report/wording.py" in names(s)]
    assert users == ["report"]


def test_no_entry_point_imports_another_and_steps_holds_only_entry_points():
    import ast

    import yaml

    entry_points = set(yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"])
    modules = {p.stem for p in (ROOT / "steps").glob("*.py")} - {"__init__"}
    assert modules == entry_points
    assert [p.name for p in (ROOT / "steps").iterdir() if p.is_dir()
            and p.name != "__pycache__"] == []
    for path in (ROOT / "steps").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("steps"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("steps") for a in node.names), path.name


def test_comments_docstrings_and_blank_lines_do_not_change_the_code_hash():
    code = 'def f(x):\n    return x + 1\n'
    same = ('"""A module."""\n# a comment\n\n\ndef f(x):  # why\n'
            '    """Adds one."""\n\n    return x + 1\n')
    assert code_syntax(same) == code_syntax(code)
    assert code_syntax('def f(x):\n    return x + 2\n') != code_syntax(code)
    assert code_syntax('def g(x):\n    return x + 1\n') != code_syntax(code)
    assert code_syntax('X = "not a docstring"\n') != code_syntax('X = "changed"\n')


@pytest.mark.parametrize("keys_of", [
    lambda: source_files("train"),
    lambda: code_syntax("def f(x):\n    return x + 1\n"),
], ids=["source_files", "code_syntax"])
def test_modules_are_parsed_one_thread_at_a_time(keys_of):
    """CPython 3.11's AST constructor shares its recursion count between threads, and a sweep
    computes keys from several (python/cpython#106905): every parse waits for the one before."""
    from agnews.tracking import step_cache

    done = threading.Event()
    with step_cache._PARSING:  # a parse in another thread, under way
        worker = threading.Thread(target=lambda: (keys_of(), done.set()), daemon=True)
        worker.start()
        assert not done.wait(0.5)
    assert done.wait(30)


def test_editing_a_library_module_changes_only_the_steps_that_run_it(tmp_path):
    copy = tmp_path / "project"
    for folder in ("steps", "agnews"):
        shutil.copytree(ROOT / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    before = {s: hash_code(source_files(s, copy), copy) for s in STEPS}
    wording = copy / "agnews" / "report" / "wording.py"
    wording.write_text(wording.read_text() + "\n# a comment\n")
    assert {s: hash_code(source_files(s, copy), copy) for s in STEPS} == before
    wording.write_text(wording.read_text() + "EXTRA = 1\n")
    after = {s: hash_code(source_files(s, copy), copy) for s in STEPS}
    assert [s for s in STEPS if after[s] != before[s]] == ["report"]


def test_the_reports_inputs_are_the_caches_upstream_of_report():
    from agnews.report.facts import STEP_INPUTS

    assert STEP_INPUTS == UPSTREAM["report"]


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "train.csv").write_text("a")
    before = fingerprint(str(tmp_path))
    assert fingerprint(str(tmp_path)) == before
    (tmp_path / "train.csv").write_text("b")
    assert fingerprint(str(tmp_path)) != before
    assert fingerprint("fancyzhx/ag_news") == "id:fancyzhx/ag_news"


def test_cache_key_changes_with_each_ingredient():
    base = dict(step="train", params={"epochs": "2"}, upstream_keys={"tokenize": "k"},
                sources="s", inputs={"model": "m"})
    key = cache_key(**base)
    assert cache_key(**base) == key
    for change in ({"params": {"epochs": "3"}}, {"upstream_keys": {"tokenize": "k2"}},
                   {"sources": "s2"}, {"inputs": {"model": "m2"}}, {"step": "evaluate"}):
        assert cache_key(**{**base, **change}) != key


def configs(register=RegisterConfig(), **train_changes):
    return {"ingest": (DataConfig(data="fancyzhx/ag_news"),), "tokenize": (TokenizeConfig(),),
            "train": (dataclasses.replace(TrainConfig(), **train_changes),),
            "evaluate": (EvalConfig(),), "register": (register, EvalConfig()),
            "report": (ReportConfig(),)}


def test_a_train_parameter_changes_train_and_everything_after_it_only():
    a, b = step_keys(configs()), step_keys(configs(epochs=5))
    assert [a[s] == b[s] for s in STEPS] == [True, True, False, False, False, False]


def test_a_register_threshold_reruns_register_and_report_only():
    a, b = step_keys(configs()), step_keys(configs(register=RegisterConfig(min_test_f1=0.9)))
    assert [a[s] == b[s] for s in STEPS] == [True, True, True, True, False, False]


def test_a_new_hub_commit_reruns_exactly_what_reads_it():
    """main passes each Hub id's commit on as its revision parameter, so the keys follow it."""
    def keyed(data_sha="a" * 40, model_sha="b" * 40):
        pinned = configs(model_revision=model_sha)
        pinned["ingest"] = (DataConfig(data="fancyzhx/ag_news", data_revision=data_sha),)
        pinned["tokenize"] = (TokenizeConfig(model_revision=model_sha),)
        return step_keys(pinned)

    base = keyed()
    assert [base[s] == keyed(data_sha="c" * 40)[s] for s in STEPS] == [False] * 6
    assert [base[s] == keyed(model_sha="d" * 40)[s] for s in STEPS] == [
        True, False, False, False, False, False]


def test_the_checkpoint_folder_is_not_part_of_the_key():
    assert step_keys(configs()) == step_keys(configs(checkpoint_dir="/elsewhere"))


@pytest.mark.parametrize("force, expected", [
    ("", set()), ("all", set(STEPS)), ("train", {"train", "evaluate", "register", "report"}),
    ("report,tokenize", {"tokenize", "train", "evaluate", "register", "report"}),
    (" evaluate ", {"evaluate", "register", "report"}), ("register", {"register", "report"}),
])
def test_forced_steps_include_everything_after_the_first(force, expected):
    assert forced_steps(force, STEPS) == expected


def test_forcing_an_unknown_step_is_refused():
    with pytest.raises(UserError, match="unknown step"):
        forced_steps("trian", STEPS)
