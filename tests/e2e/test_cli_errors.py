"""Bad input at the command line: one clear line, a non-zero exit, no traceback, no runs left.

Most cases call the step's command line in this process (`agnews.cli.run_step` over the
step's `main`, exactly what `python -m steps.<name>` runs); the cases marked `process` start
the step as its own process, as `mlflow run` does, to keep that boundary tested too.
"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from runs import command_line
from support import ROOT, subprocess_env, texts_frame


@pytest.fixture
def run_step(monkeypatch, capsys):
    """Run a step's command line with `args` against a tracking store in `tmp_path`; returns
    its exit code, stdout and stderr. `process=True` starts it as `python -m steps.<name>`."""
    def run(module: str, args: list[str], tmp_path, process: bool = False, **env):
        store = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", **env}
        if process:
            return subprocess.run([sys.executable, "-m", f"steps.{module}", *args], cwd=ROOT,
                                  env={**subprocess_env(), **store}, capture_output=True,
                                  text=True, timeout=120)
        for key, value in store.items():
            monkeypatch.setenv(key, value)
        return command_line(module, args, capsys)
    return run


def assert_one_line_error(proc, module: str, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{module}: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.fixture
def bad_folders(tmp_path):
    def folder(name: str, train: str | None, test: str | None = '"1","t","d"\n'):
        path = tmp_path / name
        path.mkdir()
        if train is not None:
            (path / "train.csv").write_text(train)
        if test is not None:
            (path / "test.csv").write_text(test)
        return str(path)
    return folder


@pytest.mark.parametrize("make, fragments", [
    (lambda f: "./missing-folder", ["does not exist"]),
    (lambda f: f("no-csv", None, None), ["has no train.csv"]),
    (lambda f: f("malformed", '"1","a","b"\n"2","a","b","c","d"\n'), ["not a readable CSV"]),
    (lambda f: f("label5", '"5","a","b"\n'), ["outside 1-4"]),
    (lambda f: f("empty-text", '"1"," "," "\n'), ["empty text"]),
])
def test_ingest_rejects_bad_data(make, fragments, bad_folders, tmp_path, run_step):
    proc = run_step("ingest", ["--data", make(bad_folders)], tmp_path)
    assert_one_line_error(proc, "ingest", *fragments)


def test_ingest_rejects_a_sample_larger_than_the_data(bad_folders, tmp_path, run_step):
    rows = "".join(f'"{1 + i % 4}","title {i}","text {i}"\n' for i in range(8))
    proc = run_step("ingest", ["--data", bad_folders("few", rows), "--train_size", "6",
                               "--val_size", "4"], tmp_path)
    assert_one_line_error(proc, "ingest", "has 8 rows", "train_size=6 and val_size=4 need 10")


def test_ingest_rejects_a_file_without_text_and_label(tmp_path, run_step):
    pd.DataFrame({"body": ["a"], "y": [0]}).to_csv(tmp_path / "d.csv", index=False)
    proc = run_step("ingest", ["--data", str(tmp_path / "d.csv")], tmp_path, process=True)
    assert_one_line_error(proc, "ingest", "lacks column(s) text, label")


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "epochs=0"),
    (["--max_length", "4"], "max_length=4"),
    (["--train_batch_size", "0"], "train_batch_size=0"),
    (["--eval_batch_size", "0"], "eval_batch_size=0"),
])
def test_main_refuses_impossible_parameters_before_any_step(args, fragment, tmp_path,
                                                          run_step):
    proc = run_step("main", args, tmp_path)
    assert_one_line_error(proc, "main", fragment)
    assert "running ingest" not in proc.stdout


@pytest.fixture
def splits_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "val", "test"):
        texts_frame([0, 1, 2, 3]).to_parquet(folder / f"{split}.parquet")
    return str(folder)


@pytest.mark.parametrize("model, env, fragment", [
    ("./no-such-model", {}, "model folder './no-such-model' does not exist"),
    ("no-such-owner/no-such-model", {"HF_ENDPOINT": "http://127.0.0.1:9"}, "pass a local folder"),
])
def test_tokenize_rejects_unknown_models(model, env, fragment, splits_folder, tmp_path,
                                         run_step):
    # its own process: huggingface_hub reads HF_ENDPOINT when it is imported
    proc = run_step("tokenize", ["--splits", splits_folder, "--model", model], tmp_path,
                    process=True, **env)
    assert_one_line_error(proc, "tokenize", fragment)


def test_train_rejects_a_bad_input_uri(tmp_path, tiny_model, run_step):
    proc = run_step("train", ["--tokenized", "runs:/0123456789abcdef/tokenized", "--tokenizer",
                              "runs:/0123456789abcdef/tokenizer", "--model", str(tiny_model)],
                    tmp_path)
    assert_one_line_error(proc, "train", "cannot fetch tokenized", "tokenize run")


def test_predict_names_the_bad_rows_and_writes_nothing(tmp_path, run_step):
    (tmp_path / "in.csv").write_text("text,label\nfine story,1\n,2\nanother,3\n\" \",0\n")
    proc = run_step("predict", ["--input", str(tmp_path / "in.csv"), "--output",
                                str(tmp_path / "out.csv")], tmp_path)
    assert_one_line_error(proc, "predict", "2 empty text(s), at row(s) 2, 4", "remove or fill")
    assert not (tmp_path / "out.csv").exists()


def test_predict_without_a_champion_says_how_to_get_one(tmp_path, run_step):
    (tmp_path / "in.csv").write_text("text\nfine story\n")
    proc = run_step("predict", ["--input", str(tmp_path / "in.csv"), "--output",
                                str(tmp_path / "out.csv")], tmp_path)
    assert_one_line_error(proc, "predict", "models:/agnews-classifier@champion",
                          "register one first")


def test_register_rejects_an_unknown_run(tmp_path, run_step):
    proc = run_step("register", ["--evaluate_run", "0123456789abcdef"], tmp_path)
    assert_one_line_error(proc, "register", "is not a run in this tracking store")
