"""The drift report of one batch: the verdict with its reasons, every check with its p-value
before and after Holm's correction, and the plots, as document blocks
(`agnews.report.document` renders them to a self-contained HTML file and Markdown)."""
from __future__ import annotations

from agnews.monitoring.drift import Check
from agnews.report.document import Block, Bullets, Heading, Image, Para, Table

MEANING = {
    "length_tokens": "text length in tokens: KS distance, two-sample KS test",
    "unseen_pieces": "share of word pieces never seen in training: one-sided Mann-Whitney test "
                     "of the per-text shares; must also double and rise by 2 points",
    "vocabulary_auc": "held-out ROC AUC of a classifier telling batch from reference texts: "
                      "one-sided Mann-Whitney test of its scores",
    "class_mix": "PSI of the predicted class mix: chi-squared test of homogeneity; must also "
                 "reach PSI 0.1",
    "confidence": "the model's confidence: KS distance, two-sample KS test",
    "accuracy": "accuracy on the batch's labels: one-sided score test of two proportions "
                "against the reference's",
    "estimated_accuracy": "accuracy estimated without labels from the confidence calibrated on "
                          "the reference's test rows: one-sided Welch t-test of the calibrated "
                          "scores (judged only when the batch has no labels)",
}

CAPTIONS = {"length_tokens.png": "Text length in tokens: the reference's test texts and the batch",
            "class_mix.png": "Predicted class mix: the reference's test texts and the batch",
            "confidence.png": "The model's confidence: the reference's test texts and the batch",
            "confusion_matrix.png": "Confusion matrix on the batch's labels"}


def _fmt(value: float) -> str:
    if value != value:  # NaN: the check was not judged
        return "n/a"
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def drift_report(model: str, number: int, rows: int, checks: list[Check],
                 images: dict[str, bytes], reference_runs: dict[str, str],
                 alpha: float) -> list[Block]:
    flagged = [c for c in checks if c.drift]
    judged = sum(c.in_family for c in checks)
    verdict = (f"Drift: {len(flagged)} of {judged} checks flag this batch."
               if flagged else f"No drift: none of the {judged} checks flags this batch.")
    blocks: list[Block] = [
        Heading(f"Drift report: {model}, batch {number}", 1),
        Para(f"{rows} texts compared with the model's reference: its training texts and its "
             f"test texts with the model's predictions (evaluate run "
             f"{reference_runs['evaluate']}, ingest run {reference_runs['ingest']}). {verdict}"),
    ]
    if flagged:
        blocks.append(Bullets([c.reason for c in flagged]))
    blocks += [Heading("Checks"),
               Para(f"Each check is a two-sample test of the batch against the reference. A "
                    f"check flags drift when its p-value, adjusted with Holm's method over the "
                    f"batch's checks, is below {alpha:g} (and, where stated, the change is "
                    f"large enough to matter): a batch from the reference's own distribution "
                    f"is flagged by any check at most {alpha * 100:g}% of the time."),
               Table(["check", "value", "p", "Holm p", "drift", "what it measures"],
                     [[c.name, _fmt(c.value), _fmt(c.p), _fmt(c.p_holm),
                       ("yes" if c.drift else "no") if c.in_family else "not judged",
                       MEANING.get(c.name, "")] for c in checks])]
    blocks += [Image(name, CAPTIONS.get(name, name), data) for name, data in images.items()]
    return blocks
