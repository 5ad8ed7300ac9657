"""OpenVINO, the parity gate's fourth runtime (`agnews.model.openvino_runtime`): it scores the
exported graph as PyTorch scores the model, at the precision train judged it at, from several
threads at once; a model logged with it scores through it without torch; and where it cannot
run, the other runtimes are judged without it."""
from __future__ import annotations

import subprocess
import sys
import threading

import mlflow
import numpy as np
import pytest
from support import ROOT, TrialInProcess, score_alone, subprocess_env

from agnews.model import onnx_export, openvino_runtime
from agnews.model.batching import predict_logits
from agnews.model.device import Precision
from agnews.model.logged_model import load_logged_classifier, log_classifier, score_texts
from agnews.model.onnx_export import export_onnx, pick_runtime
from agnews.model.openvino_runtime import OpenVinoRuntime, inference_precision, open_session
from agnews.model.runtimes import TorchRuntime

FP32 = Precision("fp32", "fp32", "asked for by the test")
BF16 = Precision("bf16", "bf16", "asked for by the test")




@pytest.fixture(scope="module")
def graph(tiny_scored, tmp_path_factory):
    return export_onnx(tiny_scored[0], tmp_path_factory.mktemp("openvino") / "model.onnx")


def test_openvino_scores_the_graph_as_pytorch_scores_the_model(tiny_scored, graph):
    model, tokenizer, _, ids, _ = tiny_scored
    pad = tokenizer.pad_token_id
    expected = predict_logits(model, ids, 16, pad, "fp32")
    fp32 = OpenVinoRuntime(open_session(graph, "fp32"))
    np.testing.assert_allclose(fp32.logits(ids, 16, pad), expected, atol=1e-4)
    bf16 = OpenVinoRuntime(open_session(graph, "bf16")).logits(ids, 16, pad)
    # bf16's rounding: close to fp32, not equal (the gate judges whether it is close enough)
    assert 0 < np.abs(bf16 - expected).max() < 0.5
    assert fp32.tags()["scorer"] == "openvino" and fp32.tags()["precision_score"] == "fp32"
    assert "OpenVINO 20" in fp32.tags()["device_name"]


def test_only_bf16_asks_openvino_for_bf16():
    assert [inference_precision(p) for p in ("bf16", "fp32", "fp16")] == ["bf16", "fp32", "fp32"]


def test_one_runtime_serves_several_threads_at_once(tiny_scored, graph):
    """A served model answers from several threads: each gets its own infer request, and
    every answer is the one a lone caller gets."""
    _, tokenizer, _, ids, _ = tiny_scored
    runtime = OpenVinoRuntime(open_session(graph, "fp32"))
    parts = [ids[i * 100:(i + 1) * 100] for i in range(6)]
    alone = [runtime.logits(part, 16, tokenizer.pad_token_id) for part in parts]
    answers: dict[int, np.ndarray] = {}

    def score(i: int) -> None:
        for _ in range(3):
            answers[i] = runtime.logits(parts[i], 16, tokenizer.pad_token_id)

    threads = [threading.Thread(target=score, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for i, expected in enumerate(alone):
        np.testing.assert_array_equal(answers[i], expected)


def test_openvino_is_judged_at_the_precision_pytorch_scores_at(tiny_scored, tmp_path, monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    commands = []
    real = onnx_export.start_process
    monkeypatch.setattr(onnx_export, "start_process",
                        lambda command: commands.append(command) or real(command))
    choice = pick_runtime(model, BF16, ids, labels, tokenizer.pad_token_id, 16, tmp_path,
                          "openvino")
    assert commands[0][commands[0].index("--openvino") + 1] == "bf16"
    trial = {t.name: t for t in choice.trials}["openvino"]
    assert trial.judged and trial.rows == 1000
    assert choice.scorer == "openvino" and choice.precision == "bf16"
    assert choice.onnx == tmp_path / "model.onnx"  # the fp32 graph: OpenVINO compiles it


def test_where_openvino_cannot_run_the_others_are_judged_without_it(tiny_scored, tmp_path,
                                                                   monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored

    def missing():
        raise ModuleNotFoundError("No module named 'openvino'")

    real = onnx_export.timed

    def slow_pytorch(runtime, *args, **kwargs):  # so no variant stops for speed: each is judged
        logits, seconds = real(runtime, *args, **kwargs)
        return logits, (1e6 if isinstance(runtime, TorchRuntime) else seconds)

    monkeypatch.setattr(onnx_export, "timed", slow_pytorch)
    monkeypatch.setattr(openvino_runtime, "import_openvino", missing)
    monkeypatch.setattr(onnx_export, "start_process", TrialInProcess)  # OpenVINO "missing"
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    trials = {t.name: t for t in choice.trials}
    assert list(trials) == ["pytorch", "onnx", "onnx-int8", "openvino"]
    assert trials["openvino"].why == ("did not score (ModuleNotFoundError: No module named "
                                      "'openvino')")
    assert not trials["openvino"].passed and not trials["openvino"].judged
    assert trials["onnx"].judged and not choice.warning
    assert choice.scorer != "openvino"


def test_a_model_logged_with_openvino_scores_through_it_without_torch(tiny_scored, tracking,
                                                                     tmp_path):
    model, tokenizer, texts, ids, labels = tiny_scored
    choice = pick_runtime(model, BF16, ids, labels, tokenizer.pad_token_id, 16, tmp_path,
                          "openvino")
    with mlflow.start_run():
        info = log_classifier(model, tokenizer, 32, choice)
    config = mlflow.models.get_model_info(info.model_uri).flavors["python_function"]["config"]
    assert config["runtime"] == "openvino" and config["inference_precision"] == "bf16"
    requirements = mlflow.pyfunc.get_model_dependencies(info.model_uri)
    with open(requirements, encoding="utf-8") as fh:
        assert any(line.startswith("openvino==") for line in fh)
    expected = score_texts(load_logged_classifier(info.model_uri), texts[:20], 8)
    answer = score_alone(info.model_uri, texts[:20])
    # no torch, and none of OpenVINO's conversion tools (whose import sends a usage event)
    assert answer["scorer"] == "openvino" and answer["loaded"] == []
    assert answer["tags"]["precision_score"] == "bf16"  # as judged, on this machine too
    np.testing.assert_allclose(answer["probs"], expected, atol=1e-5)
    # a step's own precision overrides the logged one
    fp32 = load_logged_classifier(info.model_uri, "fp32")
    assert fp32.runtime.tags()["precision_score"] == "fp32"
    served = mlflow.pyfunc.load_model(info.model_uri).predict(texts[:20])
    assert [top["label"] for top in served[0]] == [
        model.config.id2label[i] for i in expected.argmax(axis=1)]


def test_openvino_opens_without_its_tools_thread_or_files(tmp_path):
    """`import openvino` imports its conversion tools, which start a thread to send a usage
    event and write a client id under ~/intel; the runtime here imports neither."""
    probe = ("import sys, threading\n"
             "from agnews.model.openvino_runtime import import_openvino\n"
             "ov = import_openvino()\n"
             "ov.Core()\n"
             "print(threading.active_count(), hasattr(ov, 'convert_model'),\n"
             "      'openvino.tools.ovc' in sys.modules)\n")
    env = {**subprocess_env(), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "False", "False"]
    assert not (tmp_path / "intel").exists()


def test_openvino_scores_at_exact_widths_whatever_the_caller_rounds_to():
    widths = []

    class Session:  # stands for OpenVinoSession: records the widths it is given
        precision = "fp32"

        def run(self, outputs, feeds):
            widths.append(feeds["input_ids"].shape[1])
            return [np.zeros((len(feeds["input_ids"]), 4), dtype=np.float32)]

    OpenVinoRuntime(Session()).logits([[5] * 5, [5] * 21], 1, 0, multiple=16)
    assert sorted(widths) == [5, 21]
