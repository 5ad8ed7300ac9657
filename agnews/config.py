"""Typed configuration: one dataclass per concern.

Every field maps one-to-one onto an MLproject parameter of the same name, and carries its
help text in `metadata["help"]` so `agnews.cli` can build each step's argument parser from the
dataclasses it uses. Validation lives in `__post_init__`, so an impossible value stops the
step (or `main`, before any child starts) with one line naming the parameter and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agnews.errors import UserError
from agnews.presets import check_preset

DEFAULT_DATA = "fancyzhx/ag_news"
DEFAULT_MODEL = "huawei-noah/TinyBERT_General_4L_312D"
LABELS = ("World", "Sports", "Business", "Sci/Tech")
SPLITS = ("train", "val", "test")  # the files ingest writes and every later step reads
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
GATE_ON = ("point", "lower_bound")
PROMOTE = ("better", "not_worse")
SCORER_CHOICES = ("auto", "pytorch", "onnx", "onnx-int8", "openvino")
PRECISION_HELP = ("auto (measured on a CPU: the faster of fp32 and bf16; on a GPU: bf16 where "
                  "native, else fp16 with loss scaling), fp32, bf16, or fp16 (GPU only)")
MODEL_REVISION_HELP = ("branch, tag or commit of a Hub model (ignored for a local folder); main "
                       "resolves it once and passes the commit on")


def _help(text: str, default):
    return field(default=default, metadata={"help": text})


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _check_precision(precision: str) -> None:
    _require(precision in PRECISIONS,
             f"precision='{precision}' is not one of {', '.join(PRECISIONS)}: pass e.g. auto")


@dataclass(frozen=True)
class DataConfig:
    """What ingest reads and how it samples the three splits."""

    data: str = _help(
        "Hugging Face dataset id, a folder in the AG News CSV layout (train.csv, test.csv), "
        "or a CSV/Parquet file or folder with `text` and `label` columns", DEFAULT_DATA)
    data_revision: str = _help(
        "branch, tag or commit of a Hub data set (ignored for local files); main resolves it "
        "once and passes the commit on, so the runs record and cache on it", "main")
    train_size: int = _help("train rows, stratified by class; 0 or more than exist = all", 1000)
    val_size: int = _help("validation rows, taken from the train split, disjoint from train", 200)
    test_size: int = _help("test rows from the test split; 0 or more than exist = all", 500)
    seed: int = _help("seeds sampling, initialisation and shuffling", 42)

    def __post_init__(self):
        _require(bool(self.data.strip()), "data is empty: pass -P data=<hub id or local path>")
        _require(bool(self.data_revision.strip()),
                 "data_revision is empty: pass a branch, tag or commit, e.g. main")
        for name in ("train_size", "val_size", "test_size"):
            value = getattr(self, name)
            _require(value >= 0, f"{name}={value} is negative: pass a row count, or 0 for all rows")


@dataclass(frozen=True)
class TokenizeConfig:
    """Which tokenizer to use and how long a text may be."""

    model: str = _help("Hugging Face model id or local model folder", DEFAULT_MODEL)
    model_revision: str = _help(MODEL_REVISION_HELP, "main")
    max_length: int = _help("tokens per text; longer texts are truncated", 128)
    num_proc: int = _help(
        "processes that encode the texts; 0 = one per 5,000 texts of a split, up to the "
        "cores (fewer texts encode as fast in one process)", 0)

    def __post_init__(self):
        _require(self.num_proc >= 0,
                 f"num_proc={self.num_proc} is negative: pass 0 (automatic) or a process count")
        _require(bool(self.model.strip()), "model is empty: pass -P model=<hub id or folder>")
        _require(bool(self.model_revision.strip()),
                 "model_revision is empty: pass a branch, tag or commit, e.g. main")
        _require(self.max_length >= 8,
                 f"max_length={self.max_length} is too short: pass -P max_length=8 or more "
                 "(AG News texts average about 53 tokens)")


@dataclass(frozen=True)
class TrainConfig:
    """How the classifier is fine-tuned."""

    model: str = _help("Hugging Face model id or local model folder", DEFAULT_MODEL)
    model_revision: str = _help(MODEL_REVISION_HELP, "main")
    # Tuned on this project's benchmark (benchmarks/vs_seed.py); the seed's recipe was
    # epochs=2, train_batch_size=4, eval_batch_size=8, learning_rate=5e-5, fp32.
    epochs: int = _help("passes over the training rows", 2)
    max_steps: int = _help(
        "most optimiser steps in all; training stops there, mid-epoch if need be, and the "
        "learning rate decays to 0 by then; 0 = the epochs decide", 0)
    train_batch_size: int = _help("rows per optimiser step", 16)
    eval_batch_size: int = _help("rows per forward pass when scoring", 64)
    micro_batch_tokens: str = _help(
        "most padded tokens per forward pass in training; a longer batch is split and its "
        "gradients accumulated (same update, lower peak memory); 0 = never split; auto = 512 "
        "on a CPU, 0 on a GPU", "auto")
    learning_rate: float = _help("peak AdamW learning rate, decayed linearly to 0", 1.5e-4)
    label_smoothing: float = _help(
        "share of each training label's weight spread evenly over all classes in the training "
        "loss (train_loss_step and train_running_loss include it; each epoch's train_loss and "
        "val_loss stay plain cross-entropy); 0 = none", 0.0)
    freeze_embeddings: bool = _help(
        "keep the pretrained word-embedding matrix fixed: its gradient and optimiser state "
        "are a large share of training memory and it barely moves on a few thousand rows", True)
    freeze_layers: int = _help(
        "lowest transformer layers kept fixed, with every embedding weight: training skips "
        "their backward pass (faster steps, fewer weights to fit); 0 = all layers train", 0)
    seed: int = _help("seeds sampling, initialisation and shuffling", 42)
    log_every_steps: int = _help(
        "optimiser steps between two points of the live train_loss_step / learning_rate "
        "curves; 0 = about 40 points per run", 0)
    select_best: bool = _help(
        "keep the last epoch's weights unless an earlier epoch is significantly more accurate "
        "on the validation rows (true: McNemar, alpha 0.05 over the earlier epochs), or the "
        "last epoch's always (false)", True)
    precision: str = _help(PRECISION_HELP, "auto")
    checkpoint_dir: str = _help(
        "folder for a checkpoint after every epoch; a train restarted with the same folder "
        "resumes after the last complete epoch; empty = no checkpoints (main sets it from the "
        "train step's cache key)", "")
    num_processes: int = _help(
        "training processes on this machine (torchrun; gloo on CPU, NCCL on GPUs), each taking "
        "its share of every batch; across machines set torchrun's PET_NNODES, PET_NODE_RANK "
        "and PET_RDZV_ENDPOINT on each", 1)
    scorer: str = _help(
        "runtime the logged model scores with: auto (the fastest of PyTorch, ONNX Runtime fp32 "
        "and int8, and OpenVINO that passes the parity gate on the val and test rows), pytorch, "
        "onnx, onnx-int8 or openvino",
        "auto")

    def __post_init__(self):
        _check_precision(self.precision)
        _require(self.scorer in SCORER_CHOICES,
                 f"scorer='{self.scorer}' is not one of {', '.join(SCORER_CHOICES)}: pass e.g. "
                 "-P scorer=auto")
        _require(self.num_processes >= 1,
                 f"num_processes={self.num_processes} must be at least 1: pass -P num_processes=1")
        _require(self.log_every_steps >= 0,
                 f"log_every_steps={self.log_every_steps} is negative: pass 0 for automatic")
        _require(self.epochs > 0, f"epochs={self.epochs} must be at least 1: pass -P epochs=2")
        _require(self.freeze_layers >= 0,
                 f"freeze_layers={self.freeze_layers} is negative: pass 0 to train every layer")
        _require(0 <= self.label_smoothing < 1,
                 f"label_smoothing={self.label_smoothing} is outside [0, 1): pass e.g. 0.1, or "
                 "0 for none")
        _require(self.max_steps >= 0,
                 f"max_steps={self.max_steps} is negative: pass 0 to let the epochs decide")
        _require(self.train_batch_size > 0,
                 f"train_batch_size={self.train_batch_size} must be at least 1")
        _require(self.eval_batch_size > 0,
                 f"eval_batch_size={self.eval_batch_size} must be at least 1")
        _require(str(self.micro_batch_tokens) == "auto"
                 or str(self.micro_batch_tokens).isdecimal(),  # what int() reads
                 f"micro_batch_tokens={self.micro_batch_tokens} is not auto or a token count: "
                 "pass e.g. -P micro_batch_tokens=512, 0 to never split a batch, or auto")
        _require(0 < self.learning_rate < 1,
                 f"learning_rate={self.learning_rate} is outside (0, 1): pass e.g. 5e-5")


@dataclass(frozen=True)
class EvalConfig:
    """How the test split is scored."""

    eval_batch_size: int = _help("rows per forward pass when scoring", 64)
    precision: str = _help(PRECISION_HELP, "auto")

    def __post_init__(self):
        _require(self.eval_batch_size > 0,
                 f"eval_batch_size={self.eval_batch_size} must be at least 1")
        _check_precision(self.precision)


@dataclass(frozen=True)
class RegisterConfig:
    """Which registered model a run's model joins, and the gate it must pass first."""

    registered_model: str = _help("name in the MLflow Model Registry", "agnews-classifier")
    min_test_accuracy: float = _help("register only if test_accuracy is at least this", 0.80)
    min_test_f1: float = _help("register only if test_f1 (weighted) is at least this", 0.80)
    gate_on: str = _help("what the gate compares with its floors: point (the test metric) or "
                         "lower_bound (the low end of its 95% interval)", "point")
    promote: str = _help("when a new version takes @champion: better (McNemar: more often "
                         "right, at promote_alpha) or not_worse (worse by at most "
                         "promote_margin, at promote_alpha)", "better")
    promote_alpha: float = _help("error rate the promotion test allows", 0.05)
    promote_margin: float = _help("accuracy a not_worse candidate may lose (0.01 = 1 point)",
                                  0.01)

    def __post_init__(self):
        _require(bool(self.registered_model.strip()) and "/" not in self.registered_model,
                 f"registered_model='{self.registered_model}' is not a usable name: pass a "
                 "name without '/', e.g. -P registered_model=agnews-classifier")
        for name in ("min_test_accuracy", "min_test_f1"):
            value = getattr(self, name)
            _require(0 <= value <= 1, f"{name}={value} is outside [0, 1]: pass e.g. 0.80")
        _require(self.gate_on in GATE_ON,
                 f"gate_on='{self.gate_on}' is not one of {', '.join(GATE_ON)}: pass e.g. point")
        _require(self.promote in PROMOTE,
                 f"promote='{self.promote}' is not one of {', '.join(PROMOTE)}: pass e.g. better")
        _require(0 < self.promote_alpha < 1,
                 f"promote_alpha={self.promote_alpha} is outside (0, 1): pass e.g. 0.05")
        _require(0 <= self.promote_margin < 1,
                 f"promote_margin={self.promote_margin} is outside [0, 1): pass e.g. 0.01")


@dataclass(frozen=True)
class PredictConfig:
    """Which model the predict entry point scores with, and where it writes (the file it
    scores is its required `input`)."""

    output: str = _help("where predictions are written: .csv or .parquet", "predictions.csv")
    model_uri: str = _help("model to score with: models:/<name>@<alias>, runs:/<id>/model, "
                           "or a model folder", "models:/agnews-classifier@champion")

    def __post_init__(self):
        _require(self.output.endswith((".csv", ".parquet")),
                 f"output='{self.output}' is neither .csv nor .parquet: pass e.g. "
                 "-P output=predictions.csv")
        _require(bool(self.model_uri.strip()), "model_uri is empty: pass -P model_uri="
                 "models:/agnews-classifier@champion or runs:/<train run>/model")


@dataclass(frozen=True)
class ReportConfig:
    """How the report is written."""

    report_lang: str = _help("language of the report: en or es", "en")
    sweep_run: str = _help("run id of the sweep that chose the model, for the report's "
                           "search section; empty = not from a sweep", "")

    def __post_init__(self):
        _require(self.report_lang in ("en", "es"),
                 f"report_lang='{self.report_lang}' is not supported: pass en or es")


@dataclass(frozen=True)
class MainConfig:
    """What only the `main` orchestrator takes."""

    force: str = _help("steps to rerun even if cached: comma-separated names, or all; every "
                       "step after the first named one reruns too", "")
    preset: str = _help(
        "named settings filling every parameter left at its default: full = every train and "
        "test row, 3 epochs at 1e-4 with the two lowest layers fixed (its time and accuracy: "
        "docs/performance.md, All the data); empty = none", "")

    def __post_init__(self):
        check_preset(self.preset)


@dataclass(frozen=True)
class SweepConfig:
    """What only the `sweep` entry point takes: how long and how widely to search."""

    n_trials: int = _help("trials to run; a continued study counts the trials that finished "
                          "before", 20)
    timeout_minutes: float = _help("start no new trial after this many minutes (running "
                                   "trials finish); 0 = no limit", 0.0)
    space: str = _help("entries replacing the default search space's, e.g. "
                       "\"learning_rate=1e-5:3e-4:log epochs=1:4 train_size=500\" (see README)", "")
    n_jobs: int = _help("trials run at once, each its own train process", 1)
    study: str = _help("Optuna study name; a name whose study exists continues it, without "
                       "repeating finished trials; empty = a new study named sweep-<time>", "")
    storage: str = _help("where the study lives: empty = the journal file .sweeps/<study>."
                         "journal, or a database URL without its password (libpq reads that "
                         "from PGPASSFILE), e.g. postgresql+psycopg://mlflow@127.0.0.1/optuna",
                         "")
    pruner_startup_trials: int = _help(
        "finished trials before the median pruner stops a trial whose val_loss at an epoch is "
        "worse than the median of the others at that epoch", 5)

    def __post_init__(self):
        _require(self.n_trials >= 1,
                 f"n_trials={self.n_trials} must be at least 1: pass e.g. -P n_trials=20")
        _require(self.n_jobs >= 1, f"n_jobs={self.n_jobs} must be at least 1: pass -P n_jobs=1")
        _require(self.timeout_minutes >= 0, f"timeout_minutes={self.timeout_minutes} is "
                 "negative: pass minutes, or 0 for no limit")
        _require(self.pruner_startup_trials >= 0, f"pruner_startup_trials="
                 f"{self.pruner_startup_trials} is negative: pass 0 or more")
        _require(self.study == "" or self.study.replace("-", "").replace("_", "").isalnum(),
                 f"study='{self.study}' is not a usable name: use letters, digits, - and _")


@dataclass(frozen=True)
class TrialConfig:
    """Set by `sweep` on the train runs it starts: which Optuna trial hears each epoch's
    val_loss (and may stop the run). Not part of train's cache key."""

    sweep_study: str = _help("Optuna study of the trial; empty = not a sweep trial", "")
    sweep_storage: str = _help("the study's storage: a journal file or a database URL", "")
    sweep_trial: int = _help("the trial's number in the study", -1)


@dataclass(frozen=True)
class MonitorConfig:
    """What the monitor entry point compares a batch with, and what drift does to its exit."""

    model_uri: str = _help("model whose answers and reference are checked: models:/<name>@<alias>"
                           ", models:/<name>/<version> or runs:/<train run>/model",
                           "models:/agnews-classifier@champion")
    reference: str = _help("run id of an evaluate run whose test texts and predictions are the "
                           "reference; empty = the model's own, found through its lineage", "")
    fail_on_drift: bool = _help("exit non-zero (3) when any check flags drift, for a scheduled "
                                "job; the run is logged either way", False)
    seed: int = _help("seeds the vocabulary classifier's split of the texts", 42)
    alpha: float = _help("family-wise false-alarm rate: the chance that a batch from the "
                         "reference's own distribution is flagged by any check (Holm)", 0.05)
    accuracy_margin: float = _help("a labelled batch's accuracy may fall this far below the "
                                   "reference's before the accuracy check tests for drift", 0.0)

    def __post_init__(self):
        _require(bool(self.model_uri.strip()), "model_uri is empty: pass -P model_uri="
                 "models:/agnews-classifier@champion or runs:/<train run>/model")
        _require(0 < self.alpha < 1, f"alpha={self.alpha} is not between 0 and 1: pass a "
                 "false-alarm rate, e.g. 0.05")
        _require(0 <= self.accuracy_margin < 1, f"accuracy_margin={self.accuracy_margin} is not "
                 "in [0, 1): pass an accuracy difference, e.g. 0.02")
