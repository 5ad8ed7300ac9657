"""Scoring through ONNX Runtime (`agnews.model.onnx_export`, `agnews.model.runtimes`): the
export scores what PyTorch scores, train's choice travels with the logged model, a model that
scores through ONNX Runtime loads without torch, and every failure falls back to PyTorch."""
from __future__ import annotations

import json
import re

import mlflow
import numpy as np
import pytest
import torch
from support import TrialInProcess, score_alone

from agnews.model import onnx_export
from agnews.model.batching import predict_logits
from agnews.model.device import Precision
from agnews.model.logged_model import load_logged_classifier, log_classifier, score_texts
from agnews.model.onnx_export import RuntimeChoice, export_onnx, pick_runtime
from agnews.model.onnx_trial import PROJECTION_MARGIN, Stopped, Watch, quantize_int8
from agnews.model.pretrained import load_classifier
from agnews.model.runtimes import OnnxRuntime, TorchRuntime, onnx_session

FP32 = Precision("fp32", "fp32", "asked for by the test")




def test_the_onnx_export_scores_what_pytorch_scores(tiny_scored, tmp_path):
    model, tokenizer, _, ids, _ = tiny_scored
    expected = predict_logits(model, ids, 16, tokenizer.pad_token_id, "fp32")
    path = export_onnx(model, tmp_path / "model.onnx")
    got = OnnxRuntime(onnx_session(path), "onnx").logits(ids, 16, tokenizer.pad_token_id)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    int8 = quantize_int8(path, tmp_path / "model.int8.onnx")
    assert int8.stat().st_size < path.stat().st_size / 2  # int8 weights: a quarter, and scales
    quantized = OnnxRuntime(onnx_session(int8), "onnx-int8").logits(ids, 16,
                                                                    tokenizer.pad_token_id)
    assert quantized.shape == expected.shape
    assert 0 < np.abs(quantized - expected).max() < 0.5  # rounded weights: close, not equal


def test_the_export_traces_plain_attention_and_leaves_the_model_as_loaded(tiny_scored, tmp_path):
    import onnx

    model, tokenizer, _, ids, _ = tiny_scored
    loaded = model.config._attn_implementation
    graphs = {attention: export_onnx(model, tmp_path / f"{attention}.onnx", attention)
              for attention in ("sdpa", "eager")}
    assert model.config._attn_implementation == loaded == "sdpa"
    operators = {attention: {node.op_type for node in onnx.load(path).graph.node}
                 for attention, path in graphs.items()}
    # the NaN guard of the sdpa trace's mask handling, run on every batch: gone from the default
    assert "IsNaN" in operators["sdpa"] and "IsNaN" not in operators["eager"]
    assert export_onnx(model, tmp_path / "default.onnx").read_bytes() == \
        graphs["eager"].read_bytes()
    logits = {attention: OnnxRuntime(onnx_session(path), "onnx").logits(
        ids, 16, tokenizer.pad_token_id) for attention, path in graphs.items()}
    np.testing.assert_allclose(logits["eager"], logits["sdpa"], atol=1e-4)


def test_every_runtime_is_judged_and_one_that_passed_scores(tiny_scored, tmp_path, monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1e6)  # PyTorch slowest: no variant stops, each is judged
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    trials = {t.name: t for t in choice.trials}
    assert list(trials) == ["pytorch", "onnx", "onnx-int8", "openvino"]
    assert trials["pytorch"].agreement == trials["onnx"].agreement == 1.0
    assert trials["openvino"].agreement == 1.0 and trials["openvino"].passed  # fp32, as asked
    assert trials[choice.scorer].passed and not choice.warning
    assert choice.scorer in choice.reason or "fastest" in choice.reason
    assert (choice.onnx is None) == (choice.scorer == "pytorch")
    assert choice.onnx is None or choice.onnx.is_file()


def reference_seconds(monkeypatch, reported: float, changed_every: int = 0) -> None:
    """PyTorch's pass reported as taking `reported` seconds, whatever it took; with
    `changed_every`, its answer on every such row moved to the next class, so the ONNX
    variants disagree with it there."""
    real = onnx_export.timed

    def reporting(runtime, *args, **kwargs):
        logits, seconds = real(runtime, *args, **kwargs)
        if not isinstance(runtime, TorchRuntime):
            return logits, seconds
        if changed_every:
            logits = logits.copy()
            logits[::changed_every] = np.roll(logits[::changed_every], 1, axis=1)
        return logits, reported

    monkeypatch.setattr(onnx_export, "timed", reporting)


def stopped_variants(choice) -> list:
    """The ONNX trials of a choice that kept PyTorch, each stopped before its last row."""
    assert choice.scorer == "pytorch" and choice.onnx is None and not choice.warning
    stopped = [t for t in choice.trials if t.name != "pytorch"]
    assert [t.name for t in stopped] == ["onnx", "onnx-int8", "openvino"]
    assert all(not t.judged and not t.passed for t in stopped)
    return stopped


def test_a_variant_slower_than_pytorch_is_stopped_not_judged(tiny_scored, tmp_path, monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1e-6)  # every ONNX variant is slower
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    for trial in stopped_variants(choice):
        # the deadline is checked after each batch: it stopped after the first of 63
        assert trial.why.startswith("slower than PyTorch: 16 of 1000 rows scored when")


def watched(seconds_per_batch: float, deadline: float = 1.0, batches: int = 10):
    """A pass of `batches` equal batches (16 rows of 32 tokens), each taking
    `seconds_per_batch` on a clock the watch reads: the Stopped it raised, or None."""
    ticks = iter(np.arange(batches + 1) * seconds_per_batch)
    watch = Watch(deadline, lengths=np.full(16 * batches, 32), batch_size=16,
                  clock=lambda: next(ticks))
    try:
        for b in range(batches):
            watch.batch(np.arange(16 * b, 16 * (b + 1)), np.zeros((16, 4)))
    except Stopped as stop:
        return stop
    return None


def test_a_pass_whose_pace_is_well_past_the_deadline_stops_at_the_third_batch():
    stop = watched(0.2)  # on course for 2.0 s against 1.0 s
    assert stop.why == "slower" and stop.rows == 48
    assert stop.projected == pytest.approx(2.0)
    assert stop.seconds == pytest.approx(0.6)  # long before the deadline


def test_a_pace_within_the_margin_runs_to_the_deadline_and_one_inside_it_to_the_end():
    assert 1.2 < 1 + PROJECTION_MARGIN
    stop = watched(0.12)  # on course for 1.2 s: within the margin, so only the deadline stops it
    assert stop.why == "slower" and stop.projected is None and stop.rows == 16 * 9
    assert watched(0.09) is None  # 0.9 s: scored to the end, then judged


def test_a_variant_on_course_to_be_slower_stops_on_its_pace_and_says_so(tiny_scored, tmp_path,
                                                                       monkeypatch):
    import functools

    from agnews.model import onnx_trial

    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1.0)
    # The trial process's watch reads a clock on which each batch takes 0.2 s: by the third
    # batch (0.6 s, before PyTorch's 1.0 s) a variant is on course for about 12 s. The trial
    # runs in this process, so the clock can be set (a real pass's speed would make it race).
    ticks = (0.2 * i for i in range(10_000))
    monkeypatch.setattr(onnx_trial, "Watch",
                        functools.partial(onnx_trial.Watch, clock=lambda: next(ticks)))
    monkeypatch.setattr(onnx_export, "start_process", TrialInProcess)
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    for trial in stopped_variants(choice):
        match = re.fullmatch(r"slower than PyTorch: on course for (\S+) s for all 1000 rows "
                             r"after 48 of them \(0.6 s\), against PyTorch's 1.0 s; not judged",
                             trial.why)
        assert match, trial.why
        assert float(match[1]) > 1.0 * (1 + PROJECTION_MARGIN)


def test_a_variant_that_disagrees_too_often_is_stopped_and_fails(tiny_scored, tmp_path,
                                                                 monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1e6, changed_every=10)  # slowest, so none stops for speed
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    for trial in stopped_variants(choice):
        # 1,000 rows allow one disagreement: a tenth of the rows differ, so a batch or two
        match = re.fullmatch(r"disagreed with PyTorch on (\d+) of the first (\d+) of 1000 rows: "
                             r"at best (\S+)% agreement, whose bound cannot show 99.5%; stopped "
                             r"there, failed", trial.why)
        assert match, trial.why
        assert int(match[1]) >= 2 and int(match[2]) <= 64


def test_a_variant_asked_for_is_judged_on_every_row_however_it_disagrees(tiny_scored, tmp_path,
                                                                        monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1e6, changed_every=10)
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path, "onnx")
    trial = {t.name: t for t in choice.trials}["onnx"]
    assert trial.judged and not trial.passed and trial.rows == 1000
    assert trial.agreement == pytest.approx(0.9)  # every tenth row of 1,000
    assert choice.scorer == "onnx" and "it FAILED the parity gate" in choice.reason


def test_a_variant_asked_for_is_judged_whatever_its_speed(tiny_scored, tmp_path, monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    reference_seconds(monkeypatch, 1e-6)  # every ONNX variant is slower
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path, "onnx")
    trials = {t.name: t for t in choice.trials}
    assert choice.scorer == "onnx" and trials["onnx"].judged and trials["onnx"].agreement == 1.0


def test_too_few_rows_to_pass_the_gate_try_no_other_runtime(tiny_scored, tmp_path, monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored
    monkeypatch.setattr(torch.onnx, "export", None)  # would fail if it were reached
    choice = pick_runtime(model, FP32, ids[:500], labels[:500], tokenizer.pad_token_id, 16,
                          tmp_path)
    assert (choice.scorer, choice.onnx, choice.trials, choice.warning) == ("pytorch", None, [], "")
    assert choice.reason.startswith("only 500 rows to judge on: even full agreement could not "
                                    "show 99.5% (that needs 539 rows)")


def test_a_model_that_does_not_export_scores_with_pytorch_and_says_why(tiny_scored, tmp_path,
                                                                        monkeypatch):
    model, tokenizer, _, ids, labels = tiny_scored

    def refuse(*args, **kwargs):  # what torch.onnx raises for an operator it cannot write
        raise RuntimeError("Exporting the operator 'aten::scaled_dot_product' to ONNX opset "
                           "version 17 is not supported.\nPlease open an issue.")

    started, real_start = [], onnx_export.start_process

    def start(command):  # the trial process, started before the export
        started.append(real_start(command))
        return started[-1]

    monkeypatch.setattr(torch.onnx, "export", refuse)
    monkeypatch.setattr(onnx_export, "start_process", start)
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path)
    # the trial process was told no "go": it has ended, scoring nothing
    assert len(started) == 1 and started[0].returncode == 0
    assert not (tmp_path / "scored.npz").exists()
    assert choice.scorer == "pytorch" and choice.onnx is None
    assert [t.name for t in choice.trials] == ["pytorch"]
    assert choice.warning == ("the model did not export to ONNX (RuntimeError: Exporting the "
                              "operator 'aten::scaled_dot_product' to ONNX opset version 17 is "
                              "not supported.): it scores with PyTorch")


def test_a_model_logged_with_onnx_scores_through_it_without_torch(tiny_scored, tracking, tmp_path):
    model, tokenizer, texts, ids, labels = tiny_scored
    choice = pick_runtime(model, FP32, ids, labels, tokenizer.pad_token_id, 16, tmp_path, "onnx")
    assert choice.scorer == "onnx"
    with mlflow.start_run():
        info = log_classifier(model, tokenizer, 32, choice)
    expected = score_texts(load_logged_classifier(info.model_uri), texts[:20], 8)
    answer = score_alone(info.model_uri, texts[:20])
    assert answer["scorer"] == "onnx" and answer["loaded"] == []
    np.testing.assert_allclose(answer["probs"], expected, atol=1e-5)
    served = mlflow.pyfunc.load_model(info.model_uri).predict(texts[:20])
    assert [top["label"] for top in served[0]] == [
        model.config.id2label[i] for i in expected.argmax(axis=1)]


def test_an_onnx_file_that_does_not_open_falls_back_to_pytorch_in_one_line(tiny_scored, tracking,
                                                                          tmp_path, capsys):
    model, tokenizer, texts, _, _ = tiny_scored
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx graph")
    with mlflow.start_run():
        info = log_classifier(model, tokenizer, 32, RuntimeChoice("onnx", "test", broken))
    capsys.readouterr()
    clf = load_logged_classifier(info.model_uri, "fp32")
    err = capsys.readouterr().err.strip().splitlines()
    assert clf.scorer == "pytorch"
    assert len(err) == 1 and err[0].startswith("agnews: warning: the model's onnx scorer did "
                                               "not open (")
    assert err[0].endswith("): scoring with PyTorch instead")
    assert score_texts(clf, texts[:3], 8).shape == (3, 4)


def test_the_logged_runtime_is_read_under_each_name_it_was_logged_with():
    from agnews.model.runtimes import logged_runtime

    assert logged_runtime({"runtime": "onnx", "max_length": 128}) == "onnx"
    assert logged_runtime({"scorer": "onnx-int8"}) == "onnx-int8"  # versions logged before
    assert logged_runtime({"max_length": 128}) == "pytorch"  # versions before the parity gate


def test_the_train_run_records_a_stopped_variant_without_numbers(tracking):
    from agnews.model.parity import judge, slower
    from steps.train import log_choice

    same = np.eye(4)[np.arange(600) % 4]
    labels = np.arange(600) % 4
    trials = [judge("pytorch", same, same, labels, 2.0), slower("onnx", 600, 300, 2.1, 2.0)]
    choice = RuntimeChoice("pytorch", "the fastest that passed", None, trials)
    with mlflow.start_run() as run:
        log_choice(choice)
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags["scorer"] == "pytorch"
    assert "parity_pytorch_agreement" in logged.data.metrics
    assert not [k for k in logged.data.metrics if k.startswith("parity_onnx")]
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                               artifact_path="parity_gate.json")
    with open(path, encoding="utf-8") as fh:
        table = json.load(fh)
    rows = {row[0]: dict(zip(table["columns"], row, strict=True)) for row in table["data"]}
    assert rows["onnx"]["judged"] is False and rows["onnx"]["agreement"] is None
    assert rows["onnx"]["why"].startswith("slower than PyTorch: 300 of 600 rows")


def test_train_draws_its_plots_after_the_parity_gate_and_the_model(tracking, tiny_model,
                                                                  monkeypatch):
    """matplotlib loads for the plots; drawn before the gate, its memory sat under the gate's
    scoring pass, the train process's peak."""
    import agnews.model.logged_model as logged_model
    import agnews.model.parity as parity
    import agnews.tracking.runs as runs
    from agnews.config import TrainConfig
    from agnews.training.distributed import Processes
    from agnews.training.loop import FitResult
    from steps.train import log_trained

    done = []
    monkeypatch.setattr(parity, "gate_sample", lambda val, test, seed: ([[101, 102]], [0]))
    monkeypatch.setattr(onnx_export, "pick_runtime", lambda *args: done.append("gate") or
                        RuntimeChoice("pytorch", "the reference", None, []))
    monkeypatch.setattr(logged_model, "log_classifier", lambda *args: done.append("model"))
    draw = runs.log_figure
    monkeypatch.setattr(runs, "log_figure",
                        lambda fig, path: done.append(path) or draw(fig, path))
    scores = {f"{split}_{name}": 0.5 for split in ("train", "val")
              for name in ("loss", "accuracy", "f1", "precision", "recall")}
    result = FitResult([scores, scores], [{"step": 1, "train_loss_step": 1.3,
                                           "learning_rate": 1e-4, "epoch": 0.5}],
                       2, Precision("fp32", "fp32", "a test"), 0)
    with mlflow.start_run() as run:
        log_trained(result, load_classifier(str(tiny_model)), tiny_model, {"val": None,
                    "test": None}, {"pad_token_id": 0, "max_length": 32}, TrainConfig(),
                    Processes())
    assert done == ["gate", "model", "plots/loss_curves.png", "plots/metric_evolution.png",
                    "plots/learning_rate.png"]
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert logged == {"plots/loss_curves.png", "plots/metric_evolution.png",
                      "plots/learning_rate.png"}
