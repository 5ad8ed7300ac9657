"""precision=auto: measured on a CPU and remembered, native-or-fp16 on a GPU, fp16 trained with
loss scaling."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from support import ROOT, subprocess_env, texts_frame

from agnews.config import TrainConfig
from agnews.data.tokenized import encode
from agnews.errors import UserError
from agnews.model import device
from agnews.model import precision as probe
from agnews.model.device import Precision
from agnews.model.precision import choose_precision, gpu_precision
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.training.loop import fit


@pytest.fixture
def model(tiny_model):
    return load_classifier(str(tiny_model))


def seconds(fp32_train, bf16_train, fp32_score=1.0, bf16_score=1.0):
    return {"fp32": {"train": fp32_train, "score": fp32_score},
            "bf16": {"train": bf16_train, "score": bf16_score}}


@pytest.mark.parametrize("timings, train, score", [
    (seconds(1.0, 0.7, 1.0, 0.65), "bf16", "bf16"),   # the AMD EPYC's pattern
    (seconds(1.0, 1.4, 1.0, 1.45), "fp32", "fp32"),   # the Intel Xeon without AMX
    (seconds(1.0, 0.97, 1.0, 0.8), "fp32", "bf16"),   # within the margin: fp32 is exact
])
def test_decide_takes_bf16_only_where_it_is_measurably_faster(timings, train, score):
    assert probe.decide(timings, "train") == train
    assert probe.decide(timings, "score") == score


def test_probe_times_both_tasks_and_leaves_the_model_and_random_state_alone(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    timings = probe.time_precisions(model, rounds=1)
    assert set(timings) == {"fp32", "bf16"}
    assert all(0 < timings[p][t] < 60 for p in timings for t in ("train", "score"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # a probed run trains as a remembered one


@pytest.mark.parametrize("fp32, bf16, clear", [
    (1.0, 0.7, True),    # the AMD EPYC's pattern: far below the line, one round settles it
    (1.0, 0.8, False),   # below the line, but not by enough for one round
    (1.0, 1.5, False),   # fp32 ahead: one round's ratio rose by up to 25%, so none settles
])
def test_one_round_settles_a_task_only_where_bf16_is_far_ahead(fp32, bf16, clear):
    assert probe.clear(seconds(fp32, bf16), "train") is clear


def rounds_timed(model, bf16_seconds: float, **kwargs) -> int:
    """Rounds the probe timed, on a clock that gives fp32 1 s and bf16 `bf16_seconds` a run."""
    clock = {"now": 0.0, "calls": 0}
    durations = [1.0, bf16_seconds]  # each round times fp32, then bf16

    def tick() -> float:
        if clock["calls"] % 2:  # the end of a timed run
            clock["now"] += durations[(clock["calls"] // 2) % 2]
        clock["calls"] += 1
        return clock["now"]

    probe.time_precisions(model, clock=tick, **kwargs)
    return clock["calls"] // 4  # two precisions a round, two readings a run


def test_the_probe_stops_after_one_round_a_task_where_bf16_is_far_ahead(model):
    assert rounds_timed(model, 0.5) == 2                  # one round for each of the two tasks
    assert rounds_timed(model, 0.5, early=None) == 2 * probe.ROUNDS
    assert rounds_timed(model, 0.9) == 2 * probe.ROUNDS   # ahead, but within one round's noise
    assert rounds_timed(model, 1.5) == 2 * probe.ROUNDS


def test_auto_on_a_cpu_is_measured_once_then_remembered(model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake_timing(m, *args, **kwargs):
        calls.append(m)
        return seconds(0.30, 0.20, 0.10, 0.12)

    monkeypatch.setattr(probe, "time_precisions", fake_timing)
    first = choose_precision("auto", model)
    assert (first.train, first.score) == ("bf16", "fp32")
    assert first.reason.startswith("probed on ")
    assert "train fp32 300 ms vs bf16 200 ms" in first.reason
    second = choose_precision("auto", model)
    assert (second.train, second.score) == ("bf16", "fp32") and len(calls) == 1
    assert second.reason.startswith("remembered from a probe")
    stored = json.loads((tmp_path / "agnews-mlflow" / "precision.json").read_text())
    assert list(stored) == [probe.machine_key(model.config)]
    assert probe.cpu_model() in next(iter(stored))


def test_another_model_shape_is_probed_on_its_own(model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(probe, "time_precisions", lambda m, *a, **k: seconds(1, 2))
    choose_precision("auto", model)
    model.config.hidden_size = 64  # another architecture, as far as the key can tell
    choose_precision("auto", model)
    assert len(json.loads(probe.cache_file().read_text())) == 2


def test_explicit_precisions_and_fp16_without_a_gpu(model):
    assert choose_precision("bf16", model) == Precision("bf16", "bf16",
                                                        "asked for with -P precision")
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        choose_precision("fp16", model)


@pytest.mark.parametrize("name, capability, native, expected", [
    ("Tesla T4", (7, 5), False, "fp16"),     # emulated bf16 would be slow: fp16 + loss scaling
    ("NVIDIA A100", (8, 0), True, "bf16"),
])
def test_gpu_precision_counts_only_native_bf16(monkeypatch, name, capability, native, expected):
    asked = {}

    def is_bf16_supported(including_emulation=True):
        asked["including_emulation"] = including_emulation
        return native or including_emulation  # emulation "supports" bf16 everywhere

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    choice = gpu_precision(torch.device("cuda"))
    assert (choice.train, choice.score) == (expected, expected)
    assert asked == {"including_emulation": False}
    assert name in choice.reason


def test_fp16_training_scales_the_loss_and_resumes_with_the_scaler(tiny_model, tmp_path,
                                                                   monkeypatch):
    """The GPU path's fp16 with a GradScaler, run on the CPU (torch autocasts fp16 there too)."""
    tokenizer = load_tokenizer(str(tiny_model))
    labels = [i % 4 for i in range(32)]
    frame = encode(tokenizer, texts_frame(labels), 32)
    monkeypatch.setattr("agnews.training.loop.choose_precision",
                        lambda precision, model: Precision("fp16", "fp16", "test"))
    scalers = []
    real = device.grad_scaler
    monkeypatch.setattr("agnews.training.loop.grad_scaler",
                        lambda p, d: scalers.append(real(p, d)) or scalers[-1])
    cfg = TrainConfig(model=str(tiny_model), epochs=2, train_batch_size=8, learning_rate=1e-3)
    checkpoint = tmp_path / "checkpoint.pt"
    model = load_classifier(str(tiny_model))
    result = fit(model, frame, frame, cfg, tokenizer.pad_token_id, checkpoint=checkpoint)
    assert result.precision.train == "fp16" and scalers[0].is_enabled()
    assert np.isfinite([row["train_running_loss"] for row in result.history]).all()
    assert next(model.parameters()).dtype == torch.float32
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["scaler"]["scale"] == scalers[0].get_scale() > 1
    fit(load_classifier(str(tiny_model)), frame, frame, cfg, tokenizer.pad_token_id,
        checkpoint=checkpoint)  # resumes after epoch 2: nothing left to train
    assert scalers[1].get_scale() == scalers[0].get_scale()


FREED_MEMORY = textwrap.dedent("""
    import sys
    import numpy as np
    from agnews.model.device import release_freed_memory

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    blocks = [np.ones(8 * 1024) for _ in range(4000)]  # 64 KB each: glibc's heap, not mmap
    last = np.ones(8 * 1024)  # above them, so freeing them cannot shrink the heap's top
    del blocks
    freed = rss_mb()
    if sys.argv[1] == "release":
        release_freed_memory()
    print(freed - rss_mb())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc's malloc")
def test_freed_memory_goes_back_to_the_system_only_when_released():
    """250 MB freed in the middle of the heap stays resident until release_freed_memory
    hands it back (what train does between training, scoring and exporting)."""
    def returned_mb(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", FREED_MEMORY, mode], cwd=ROOT,
                             env=subprocess_env(), capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])

    assert returned_mb("keep") < 20
    assert returned_mb("release") > 200
