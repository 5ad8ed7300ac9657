"""The model card of a registered version, in the Hugging Face format: YAML metadata (with a
`model-index` of the test metrics, their 95% intervals and row counts) and the prose a reader of
the version needs. Built by `huggingface_hub`'s own ModelCardData, so the Hub reads it as its
own cards; a pure function of `CardFacts`, which the register step gathers from the runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agnews.hub import is_hub_id

# Deferred import: huggingface_hub, in the functions that use it.

# The test metrics a card reports: (logged name, the Hub's metric type, what to call it).
CARD_METRICS = (("test_accuracy", "accuracy", "Accuracy"),
                ("test_f1", "f1", "F1 (weighted)"),
                ("test_f1_macro", "f1", "F1 (macro)"),
                ("test_precision", "precision", "Precision (weighted)"),
                ("test_recall", "recall", "Recall (weighted)"),
                ("test_roc_auc", "roc_auc", "ROC AUC (macro, one-vs-rest)"),
                ("test_log_loss", "log_loss", "Log loss"),
                ("test_ece", "ece", "Expected calibration error (10 bins)"))
SETTINGS = ("train_size", "val_size", "max_length", "epochs", "train_batch_size",
            "learning_rate", "label_smoothing", "micro_batch_tokens", "freeze_embeddings",
            "freeze_layers", "select_best", "seed")
AG_NEWS_TERMS = ("AG News is built from the AG corpus, which its authors share for "
                 "non-commercial research and educational use.")


@dataclass(frozen=True)
class CardFacts:
    name: str                     # registered model
    version: str
    alias: str                    # champion | challenger
    decision: str                 # the register step's sentence
    base_model: str               # Hub id or folder
    base_revision: str            # the commit the run read ("" for a folder)
    data: str                     # Hub id or folder
    data_revision: str
    rows: dict[str, int]          # train / val / test rows
    metrics: dict[str, float]     # the evaluate run's metrics, with their _ci_low / _ci_high
    params: dict[str, str]        # the train run's parameters
    compute: dict[str, str]       # device and precisions (train's tags), scoring speed
    license: str = "unknown"
    runs: dict[str, str] = field(default_factory=dict)  # step -> run id


def card_data(f: CardFacts):
    """The card's YAML metadata as huggingface_hub's ModelCardData."""
    from huggingface_hub import EvalResult, ModelCardData

    hub = is_hub_id(f.data)
    results = [EvalResult(
        task_type="text-classification", task_name="Text Classification",
        dataset_type=f.data if hub else "local",
        dataset_name="AG News" if "ag_news" in f.data.lower() else Path(f.data).name,
        dataset_split="test",
        dataset_revision=f.data_revision or None, metric_type=kind, metric_name=title,
        metric_value=round(f.metrics[key], 4),
        metric_args={"ci_95_low": round(f.metrics[f"{key}_ci_low"], 4),
                     "ci_95_high": round(f.metrics[f"{key}_ci_high"], 4),
                     "rows": f.rows["test"]})
        for key, kind, title in CARD_METRICS if f"{key}_ci_low" in f.metrics]
    return ModelCardData(
        language="en", license=f.license, library_name="transformers",
        tags=["text-classification", "mlflow", "ag-news"],
        datasets=[f.data] if hub else None,
        base_model=f.base_model if is_hub_id(f.base_model) else None,
        metrics=["accuracy", "f1", "precision", "recall", "roc_auc"], model_name=f.name,
        pipeline_tag="text-classification",
        eval_results=results)


def sentence(text: str) -> str:
    """`text` as a sentence of its own: capitalized, with a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _interval(f: CardFacts, key: str) -> str:
    return (f"{f.metrics[key]:.4f} (95% CI {f.metrics[f'{key}_ci_low']:.4f}-"
            f"{f.metrics[f'{key}_ci_high']:.4f})")


def card_text(f: CardFacts) -> str:
    """The whole card: front matter, then the prose sections."""
    revision = f" at revision `{f.base_revision}`" if f.base_revision else ""
    data_at = f" at revision `{f.data_revision}`" if f.data_revision else ""
    metrics = [f"| {title} | {_interval(f, key)} |" for key, _, title in CARD_METRICS
               if f"{key}_ci_low" in f.metrics]
    settings = [f"| {k} | {f.params[k]} |" for k in SETTINGS if k in f.params]
    speed = f.compute.get("rows_per_second")
    lines = [
        f"# {f.name} version {f.version}", "",
        f"A 4-class news topic classifier (World, Sports, Business, Sci/Tech), fine-tuned from "
        f"`{f.base_model}`{revision} on AG News, registered in the MLflow Model Registry as "
        f"`models:/{f.name}/{f.version}` (alias `{f.alias}` when registered).", "",
        "## Intended use", "",
        "Sorting English news headlines and short descriptions into the four AG News topics. "
        "The model answers one of the four classes for any text: it has no 'none of these' "
        "class, and its confidence is no guarantee on text unlike news.", "",
        "## Results", "",
        f"On {f.rows['test']} test rows (95% intervals: Wilson for accuracy and recall, a seeded "
        "bootstrap for the rest):", "", "| metric | value |", "|---|---|", *metrics, "",
        "## Limitations", "",
        f"- The intervals are those of {f.rows['test']} rows: a difference smaller than their "
        "width between two versions is not evidence that one is better.",
        "- English news only; accuracy falls on other languages, on titles alone and on topics "
        "outside the four (the project's drift monitor measures it on a batch).",
        f"- {AG_NEWS_TERMS}", "",
        "## Training data", "",
        f"`{f.data}`{data_at}: {f.rows['train']} training rows and {f.rows['val']} validation "
        "rows, stratified by class; the test rows come from the test split, disjoint from both.",
        "",
        "## Training settings", "", "| setting | value |", "|---|---|", *settings, "",
        "## Hardware and precision", "",
        f"Trained on `{f.compute.get('device', '?')}` in {f.compute.get('precision_train', '?')}"
        f"; scored in {f.compute.get('precision_score', '?')} "
        f"({f.compute.get('precision_reason', 'no reason recorded')}).",
        *([f"Scoring speed measured on the {f.rows['test']} test rows, tokenization included: "
           f"{speed:.0f} rows/s on `{f.compute.get('scored_on', '?')}`."]
          if isinstance(speed, float) else []), "",
        "## Promotion decision", "", sentence(f.decision), "",
        "## Runs", "", *[f"- {step}: `{run}`" for step, run in f.runs.items()], ""]
    return f"---\n{card_data(f).to_yaml()}\n---\n\n" + "\n".join(lines)
