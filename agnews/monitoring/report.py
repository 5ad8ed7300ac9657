"""The drift report of one batch: the verdict with its reasons, every check against its
threshold, and the plots, as document blocks (`agnews.report.document` renders them to a
self-contained HTML file and Markdown)."""
from __future__ import annotations

from agnews.monitoring.drift import Check
from agnews.report.document import Block, Bullets, Heading, Image, Para, Table

MEANING = {
    "length_tokens": "text length in tokens: KS test p-value (drift below the threshold)",
    "unseen_pieces": "share of word pieces never seen in training (drift above)",
    "vocabulary_auc": "ROC AUC of a classifier telling batch from reference texts (drift above)",
    "class_mix": "PSI of the predicted class mix, with a chi-squared test (drift above)",
    "confidence": "model confidence: KS test p-value (drift below)",
    "accuracy": "accuracy on the batch's labels vs the test accuracy (drift when lower, "
                "one-sided binomial test)",
}

CAPTIONS = {"length_tokens.png": "Text length in tokens: the reference's test texts and the batch",
            "class_mix.png": "Predicted class mix: the reference's test texts and the batch",
            "confidence.png": "The model's confidence: the reference's test texts and the batch",
            "confusion_matrix.png": "Confusion matrix on the batch's labels"}


def _fmt(value: float) -> str:
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def drift_report(model: str, number: int, rows: int, checks: list[Check],
                 images: dict[str, bytes], reference_runs: dict[str, str]) -> list[Block]:
    flagged = [c for c in checks if c.drift]
    verdict = (f"Drift: {len(flagged)} of {len(checks)} checks flag this batch."
               if flagged else f"No drift: none of the {len(checks)} checks flags this batch.")
    blocks: list[Block] = [
        Heading(f"Drift report: {model}, batch {number}", 1),
        Para(f"{rows} texts compared with the model's reference: its training texts and its "
             f"test texts with the model's predictions (evaluate run "
             f"{reference_runs['evaluate']}, ingest run {reference_runs['ingest']}). {verdict}"),
    ]
    if flagged:
        blocks.append(Bullets([c.reason for c in flagged]))
    blocks += [Heading("Checks"),
               Table(["check", "value", "threshold", "drift", "what it measures"],
                     [[c.name, _fmt(c.value), _fmt(c.threshold), "yes" if c.drift else "no",
                       MEANING.get(c.name, "")] for c in checks])]
    blocks += [Image(name, CAPTIONS.get(name, name), data) for name, data in images.items()]
    return blocks
