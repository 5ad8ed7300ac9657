"""report: conclusions computed from crafted numbers, both languages, both renderings."""
from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd
import pytest

from agnews.report.conclusions import (
    calibration_verdict,
    comparison_verdict,
    convergence_verdict,
    fit_verdict,
    most_confused,
)
from agnews.report.content import ReportFacts, build_report, reproduce_command
from agnews.report.document import Bullets, Code, Heading, Image, Para, Table, to_html, to_markdown
from agnews.report.wording import TEXT

PNG = bytes.fromhex("89504e470d0a1a0a")  # a PNG signature is enough for the renderers


def history(train_acc, val_acc, train_loss, val_loss):
    n = len(train_acc)
    return pd.DataFrame({"epoch": range(1, n + 1), "train_accuracy": train_acc,
                         "val_accuracy": val_acc, "train_loss": train_loss, "val_loss": val_loss,
                         "train_f1": train_acc, "val_f1": val_acc})


OVERFITTING = history([0.85, 0.93, 0.99], [0.84, 0.85, 0.84], [0.5, 0.2, 0.03], [0.52, 0.5, 0.7])
GOOD = history([0.84, 0.90], [0.83, 0.88], [0.5, 0.3], [0.52, 0.35])
UNDERFIT = history([0.40, 0.55], [0.41, 0.53], [1.3, 1.1], [1.3, 1.12])


def test_an_overfitting_history_is_called_overfitting():
    text = fit_verdict(OVERFITTING, best_epoch=3)
    assert "overfits" in text and "widening" in text and "+0.1500" in text


def test_a_gap_while_validation_loss_still_falls_is_not_yet_harmful():
    still_learning = history([0.85, 0.95], [0.84, 0.87], [0.5, 0.2], [0.52, 0.44])
    text = fit_verdict(still_learning, best_epoch=2)
    assert "+0.0800" in text and "have not hurt it yet" in text and "overfits" not in text


def test_the_verdict_is_read_at_the_kept_epoch():
    text = fit_verdict(OVERFITTING, best_epoch=1)
    assert "kept epoch 1" in text and "+0.0100" in text and "no sign" in text


def test_a_good_fit_and_an_underfit_are_told_apart():
    assert "no sign of over- or underfitting" in fit_verdict(GOOD, best_epoch=2)
    assert "underfits" in fit_verdict(UNDERFIT, best_epoch=2)


def test_convergence_reads_the_validation_loss_trend():
    assert "had not converged" in convergence_verdict(GOOD)
    assert "has converged" in convergence_verdict(OVERFITTING)
    assert "one epoch" in convergence_verdict(GOOD.iloc[:1])
    # a fall under 1% counts as converged
    assert "has converged" in convergence_verdict(history([.8, .8], [.8, .8], [1, 1], [.5, .498]))


def test_most_confused_pairs_are_the_largest_off_diagonal_cells():
    confusion = np.array([[50, 1, 2, 0], [0, 60, 0, 0], [1, 0, 40, 9], [0, 0, 4, 45]])
    assert most_confused(confusion) == [("Business", "Sci/Tech", 9), ("Sci/Tech", "Business", 4)]
    assert most_confused(np.eye(4, dtype=int) * 5) == []


def test_calibration_verdict_names_the_direction():
    assert "can be read as probabilities" in calibration_verdict(0.01, 0.9, 0.9)
    assert "overconfident" in calibration_verdict(0.08, 0.95, 0.87)
    assert "underconfident" in calibration_verdict(0.08, 0.75, 0.87)


def test_comparison_gives_deltas_against_the_previous_run():
    text = comparison_verdict({"test_accuracy": 0.9, "test_f1": 0.88},
                              {"run_id": "abc", "metrics": {"test_accuracy": 0.85, "test_f1": 0.9}})
    assert "(abc)" in text and "test_accuracy 0.8500 → 0.9000 (+0.0500)" in text
    assert "test_f1 0.9000 → 0.8800 (-0.0200)" in text
    assert "first evaluated run" in comparison_verdict({"test_accuracy": 0.9}, None)


def facts(lang="en", previous=None) -> ReportFacts:
    return ReportFacts(
        params={"data": "ag", "model": "m", "epochs": "2", "seed": "42", "max_length": "128",
                "learning_rate": "5e-05", "train_batch_size": "4", "select_best": "True",
                "report_lang": lang},
        metrics={"ingest": {"train_rows": 1000, "test_rows": 500, "source_train_rows": 22438},
                 "tokenize": {"truncated_share": 0.012},
                 "train": {"best_epoch": 2},
                 "evaluate": {"test_accuracy": 0.87654, "test_f1": 0.8712, "test_precision": 0.88,
                              "test_recall": 0.87654, "test_loss": 0.41, "test_ece": 0.061,
                              "test_roc_auc": 0.9712, "test_accuracy_ci_low": 0.844,
                              "test_accuracy_ci_high": 0.903, "test_f1_ci_low": 0.84,
                              "test_f1_ci_high": 0.9, "test_recall_world_ci_low": 0.834,
                              "test_recall_world_ci_high": 0.944}},
        run_ids={"ingest": "i1", "tokenize": "t1", "train": "r1", "evaluate": "e1"},
        history=GOOD,
        per_class=pd.DataFrame({"class": ["World", "Sports", "Business", "Sci/Tech"],
                                "precision": [.9, .95, .8, .82], "recall": [.9, .96, .79, .83],
                                "f1": [.9, .955, .795, .825], "support": [125] * 4}),
        confusion=np.array([[110, 5, 5, 5], [2, 120, 2, 1], [5, 1, 99, 20], [4, 2, 15, 104]]),
        class_balance=pd.DataFrame({"split": ["train"] * 4, "class": ["World", "Sports",
                                    "Business", "Sci/Tech"], "rows": [250] * 4}),
        mistakes=pd.DataFrame({"text": ["Oil prices | rise " + "x" * 200], "true": ["Business"],
                               "predicted": ["World"], "confidence": [0.991]}),
        mean_confidence=0.93, previous=previous, lang=lang,
        images={"loss_curves.png": PNG, "confusion_matrix.png": PNG})


SECTIONS = ["Summary", "Data", "Process", "Training curves", "Evaluation", "Errors",
            "Conclusions", "Limitations", "Reproduce"]


def with_registry(f, outcome, promote="better", verdict="", **metrics):
    f.registry = {"outcome": outcome, "registered_model": "agnews-classifier",
                  "registered_version": "2", "champion_version": "1",
                  **({"promotion_verdict": verdict} if verdict else {}),
                  "decision": "test_f1 0.7000 < min_test_f1 0.80",
                  **({"model_card": "models:/agnews-classifier/2/README.md"}
                     if outcome in ("first", "champion", "challenger") else {})}
    f.metrics["register"] = {"candidate_test_f1": 0.8712, "candidate_test_accuracy": 0.87654,
                             **metrics}
    f.params.update({"min_test_accuracy": "0.8", "min_test_f1": "0.8", "promote": promote,
                     "promote_alpha": "0.05", "promote_margin": "0.01"})
    return f


PAIRED = {"paired_rows": 500, "only_candidate_right": 31, "only_champion_right": 12}
BOTH = ("Both this model and the champion (version 1), re-scored here, answered the same 500 "
        "test rows. They disagree on 43: this model is right on 31 of them, the champion on 12.")


@pytest.mark.parametrize("outcome, promote, verdict, metrics, expected", [
    ("first", "better", "", {}, "agnews-classifier version 2, the first version to pass the "
                                "gate (test_accuracy ≥ 0.8, test_f1 ≥ 0.8): it is now `champion`"),
    ("champion", "better", "better", {"champion_test_f1": 0.85, "champion_test_accuracy": 0.86,
                                      "promotion_p": 0.00296, **PAIRED},
     f"version 2, now `champion`. {BOTH} McNemar's exact one-sided test gives p = 0.00296 < "
     "0.05: this model is more often right."),
    ("challenger", "better", "indistinguishable",
     {"champion_test_f1": 0.9, "champion_test_accuracy": 0.91, "promotion_p": 0.31, **PAIRED},
     f"with alias `challenger`; version 1 stays `champion`. {BOTH} McNemar's exact one-sided "
     "test gives p = 0.31 ≥ 0.05: the two could not be told apart."),
    ("challenger", "better", "worse",
     {"champion_test_f1": 0.9, "champion_test_accuracy": 0.91, "promotion_p": 1.0, **PAIRED},
     "gives p = 1 ≥ 0.05, and the same test the other way round finds the champion better."),
    ("challenger", "not_worse", "could_be_worse",
     {"champion_test_f1": 0.9, "champion_test_accuracy": 0.91, "promotion_p": 0.2, **PAIRED},
     "Tango's one-sided score test of a loss of 1 points or more gives p = 0.2 ≥ 0.05: it "
     "could be worse by more than that."),
    ("gate", "better", "", {}, "Not registered in agnews-classifier: the model misses the gate "
                               "(test_f1 0.7000 < min_test_f1 0.80)"),
    ("already", "better", "", {}, "already agnews-classifier version 2"),
])
def test_report_states_the_registry_decision_with_its_numbers(outcome, promote, verdict, metrics,
                                                              expected):
    md = to_markdown(build_report(with_registry(facts(), outcome, promote, verdict, **metrics)))
    assert re.findall(r"^## (.+)$", md, re.M) == SECTIONS[:6] + ["Model registry"] + SECTIONS[6:]
    assert expected in md
    if metrics:  # both models' numbers on the same rows, side by side, with the interval
        assert f"| f1 | 0.8712 | 0.8400-0.9000 | {metrics['champion_test_f1']:.4f} |" in md
    else:
        assert "champion (re-scored)" not in md


def test_spanish_report_states_the_registry_decision():
    md = to_markdown(build_report(with_registry(
        facts("es"), "challenger", "better", "indistinguishable", champion_test_f1=0.9,
        champion_test_accuracy=0.9, promotion_p=0.31, **PAIRED)))
    assert "## Registro de modelos" in md and "la versión 1 sigue siendo `champion`" in md
    assert "viaja con la versión: `models:/agnews-classifier/2/README.md`" in md
    assert "Discrepan en 43: este modelo acierta 31 de ellas y el campeón 12" in md
    assert "McNemar, unilateral, da p = 0.31 ≥ 0.05: no se pueden distinguir" in md


def test_the_report_shows_each_test_metric_with_its_interval():
    md = to_markdown(build_report(facts()))
    assert "| metric | test | 95% interval |" in md
    assert "| accuracy | 0.8765 | 0.8440-0.9030 |" in md and "| f1 | 0.8712 | 0.8400-0.9000 |" in md
    assert "| World | 0.9000 | 0.9000 | 0.8340-0.9440 | 0.9000 | 125 |" in md
    assert "known only to within 0.8440 to 0.9030 (95% Wilson interval)" in md
    old = facts()  # a run logged before intervals: its numbers, no interval invented
    old.metrics["evaluate"] = {k: v for k, v in old.metrics["evaluate"].items() if "_ci_" not in k}
    md = to_markdown(build_report(old))
    assert "| accuracy | 0.8765 | - |" in md and "within 0.8442 to 0.9021" in md


def test_report_has_every_section_and_states_the_logged_numbers():
    md = to_markdown(build_report(facts()))
    assert re.findall(r"^## (.+)$", md, re.M) == SECTIONS
    assert "| accuracy | 0.8765 |" in md and "| roc_auc | 0.9712 |" in md
    assert "| ece | 0.0610 |" in md
    assert "The weakest class is Business with F1 0.7950" in md
    assert "Business read as Sci/Tech 20 times" in md
    assert "Validation loss was still falling" in md
    assert "overconfident (mean confidence 0.9300 vs accuracy 0.8765)" in md
    assert "1000 of the 22438 rows" in md
    assert "| 2 * | 0.3000 |" in md  # the kept epoch is starred
    assert "Oil prices \\| rise" in md and "…" in md  # mistakes escaped and clipped
    assert "![Loss: per optimiser step" in md
    assert "metric_evolution.png" not in md  # only images that exist are shown
    assert "first evaluated run" in md


def test_report_says_where_and_in_what_precision_the_model_ran():
    f = facts()
    assert ", scored in " not in to_markdown(build_report(f))  # older runs lack the tags
    f.compute = {"device": "cpu", "precision_train": "bf16", "precision_score": "fp32",
                 "precision_reason": "probed on AMD EPYC: train fp32 425 ms vs bf16 184 ms"}
    assert ("Trained on cpu in bf16, scored in fp32 (probed on AMD EPYC: train fp32 425 ms vs "
            "bf16 184 ms).") in to_markdown(build_report(f))


def test_report_says_which_runtime_scores_and_why():
    f = facts()
    assert "score with" not in to_markdown(build_report(f))  # runs before the parity gate
    f.compute = {"scorer": "onnx-int8", "scorer_reason": "fastest that passed the parity gate: "
                 "214 rows/s (vs pytorch 173, onnx 98); agrees on 99.60% of 500 rows"}
    assert ("Evaluate, predict, monitor and the served model score with onnx-int8: fastest that "
            "passed the parity gate: 214 rows/s") in to_markdown(build_report(f))
    f.lang = "es"
    assert "el modelo servido puntúan con onnx-int8" in to_markdown(build_report(f))


def test_report_compares_with_the_previous_run():
    md = to_markdown(build_report(facts(previous={"run_id": "old", "metrics": {
        "test_accuracy": 0.85, "test_f1": 0.84, "test_loss": 0.5, "test_ece": 0.05}})))
    assert "test_accuracy 0.8500 → 0.8765 (+0.0265)" in md


def test_spanish_report_is_translated():
    md = to_markdown(build_report(facts("es")))
    assert re.findall(r"^## (.+)$", md, re.M) == [
        "Resumen", "Datos", "Proceso", "Curvas de entrenamiento", "Evaluación", "Errores",
        "Conclusiones", "Limitaciones", "Reproducir"]
    assert "La clase más débil es Business con F1 0.7950" in md
    for english in ("The weakest", "Validation loss", "overconfident", "Trained on", "kept epoch"):
        assert english not in md


def test_both_languages_define_the_same_sentences_and_placeholders():
    fields = {lang: {k: {f for _, f, _, _ in string.Formatter().parse(v) if f}
                     for k, v in table.items()} for lang, table in TEXT.items()}
    assert fields["en"] == fields["es"]


def test_reproduce_command_pins_the_hub_commits_the_run_read():
    cmd = reproduce_command({"data": "fancyzhx/ag_news", "data_revision": "a" * 40,
                             "model": "huawei-noah/TinyBERT_General_4L_312D",
                             "model_revision": "b" * 40})
    assert cmd.endswith(f"-P data=fancyzhx/ag_news -P data_revision={'a' * 40} "
                        f"-P model=huawei-noah/TinyBERT_General_4L_312D "
                        f"-P model_revision={'b' * 40}")


def test_reproduce_command_carries_every_main_parameter_given():
    cmd = reproduce_command({"data": "ag", "epochs": "3", "splits": "runs:/x/data",
                             "report_lang": "es"})
    assert cmd == ("mlflow run . -e main --env-manager local -P data=ag -P epochs=3 "
                   "-P report_lang=es")


def test_html_is_self_contained_and_escaped():
    blocks = [Heading("T", 1), Para("a < b & c"), Bullets(["x"]), Table(["h"], [["<td>"]]),
              Code("mlflow run ."), Image("p.png", "cap", PNG)]
    page = to_html(blocks, "title")
    assert "a &lt; b &amp; c" in page and "&lt;td&gt;" in page
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page
    assert not re.search(r"(src|href)=\"https?:", page) and "<script" not in page


def test_markdown_escapes_table_pipes():
    md = to_markdown([Table(["a"], [["x|y"]])])
    assert "| x\\|y |" in md
