"""What the warm step server (`agnews.tracking.warm`) imports before it forks any step:
importing this module is its whole work. The steps' modules, the modules they import only
once they run, and the libraries those import later still (a model class transformers picks
by name, ONNX Runtime, MLflow's database store), so a forked step finds them loaded.

Nothing here starts a thread, opens a connection or runs a tensor operation: the processes
forked from this one must be able to start their own (an OpenMP pool, a CUDA context, a
tracking store's connections), which a fork after them could not. What is alive at the end
is frozen out of the collector's passes, so a step's collections do not walk it (and so do
not copy the pages they would write to).
"""
from __future__ import annotations

import gc
import importlib

from agnews.heap import defer_full_collections, resume_full_collections

MODULES = (
    # the libraries, in the order the steps first need them (not OpenVINO: its import starts
    # a native thread, which a forked step would lack, and takes a fraction of a second)
    "mlflow", "mlflow.pyfunc", "mlflow.models", "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store", "pandas", "pyarrow.parquet", "datasets",
    "matplotlib.pyplot", "seaborn", "sklearn.metrics", "tokenizers", "torch", "transformers",
    "transformers.models.bert.modeling_bert", "onnxruntime",
    # the steps, and what each imports as it runs
    "steps.ingest", "steps.tokenize", "steps.train", "steps.evaluate", "steps.register",
    "steps.report", "agnews.data.plots", "agnews.tracking.fingerprint", "agnews.tracking.runs",
    "agnews.model.fast_tokenizer", "agnews.model.pretrained", "agnews.model.logged_model",
    "agnews.model.onnx_export", "agnews.model.parity", "agnews.model.openvino_runtime",
    "agnews.training.plots",
    "agnews.evaluation.plots", "agnews.evaluation.intervals",
)


def load(modules: tuple[str, ...] = MODULES) -> list[str]:
    """Import `modules` with full collections held back; returns those that failed (a
    library this environment lacks: the step that needs it will say so itself)."""
    missing = []
    defer_full_collections()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    resume_full_collections()
    gc.collect()
    gc.freeze()
    return missing


load()
