"""report: conclusions computed from crafted numbers, and both renderings of the document."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from steps.report_content import (ReportFacts, build_report, convergence_verdict, fit_verdict,
                                  most_confused, reproduce_command)
from steps.report_document import Bullets, Code, Heading, Image, Para, Table, to_html, to_markdown

PNG = bytes.fromhex("89504e470d0a1a0a")  # a PNG signature is enough for the renderers


def history(train_acc, val_acc, train_loss, val_loss):
    n = len(train_acc)
    return pd.DataFrame({"epoch": range(1, n + 1), "train_accuracy": train_acc,
                         "val_accuracy": val_acc, "train_loss": train_loss, "val_loss": val_loss,
                         "train_f1": train_acc, "val_f1": val_acc})


def test_overfitting_history_is_called_overfitting():
    text = fit_verdict(history([0.80, 0.99], [0.78, 0.85], [0.6, 0.05], [0.62, 0.70]))
    assert "overfits" in text and "widening" in text and "+0.1400" in text


def test_close_train_and_validation_is_not_overfitting():
    text = fit_verdict(history([0.80, 0.86], [0.79, 0.85], [0.6, 0.4], [0.62, 0.42]))
    assert "no sign of overfitting" in text and "+0.0100" in text


def test_convergence_reads_the_validation_loss_trend():
    assert "had not converged" in convergence_verdict(history([.7, .8], [.7, .8], [1, .5], [1, .6]))
    assert "has converged" in convergence_verdict(history([.7, .8], [.7, .8], [1, .5], [.5, .6]))
    assert "one epoch" in convergence_verdict(history([.7], [.7], [1], [1]))


def test_most_confused_pairs_are_the_largest_off_diagonal_cells():
    confusion = np.array([[50, 1, 2, 0], [0, 60, 0, 0], [1, 0, 40, 9], [0, 0, 4, 45]])
    assert most_confused(confusion) == [("Business", "Sci/Tech", 9), ("Sci/Tech", "Business", 4)]
    assert most_confused(np.eye(4, dtype=int) * 5) == []


def facts() -> ReportFacts:
    return ReportFacts(
        params={"data": "ag", "model": "m", "epochs": "2", "seed": "42", "max_length": "128"},
        metrics={"ingest": {"train_rows": 1000, "test_rows": 500, "source_train_rows": 22438},
                 "tokenize": {"truncated_share": 0.012},
                 "evaluate": {"test_accuracy": 0.87654, "test_f1": 0.8712, "test_precision": 0.88,
                              "test_recall": 0.87654, "test_loss": 0.41}},
        run_ids={"ingest": "i1", "tokenize": "t1", "train": "r1", "evaluate": "e1"},
        history=history([0.8, 0.9], [0.78, 0.86], [0.6, 0.3], [0.62, 0.45]),
        per_class=pd.DataFrame({"class": ["World", "Sports", "Business", "Sci/Tech"],
                                "precision": [.9, .95, .8, .82], "recall": [.9, .96, .79, .83],
                                "f1": [.9, .955, .795, .825], "support": [125] * 4}),
        confusion=np.array([[110, 5, 5, 5], [2, 120, 2, 1], [5, 1, 99, 20], [4, 2, 15, 104]]),
        class_balance=pd.DataFrame({"split": ["train"] * 4, "class": ["World", "Sports",
                                    "Business", "Sci/Tech"], "rows": [250] * 4}),
        images={"loss_curves.png": PNG, "confusion_matrix.png": PNG})


def test_report_states_the_logged_numbers_and_computed_conclusions():
    md = to_markdown(build_report(facts()))
    assert "| accuracy | 0.8765 |" in md and "| f1 | 0.8712 |" in md
    assert "The weakest class is Business with F1 0.7950." in md
    assert "Business read as Sci/Tech 20 times" in md
    assert "Validation loss was still falling" in md
    assert "1000 of the 22438 rows" in md
    assert "![Loss per epoch, train vs validation](img/loss_curves.png)" in md
    assert "metric_evolution.png" not in md  # only images that exist are shown


def test_reproduce_command_carries_every_main_parameter_given():
    cmd = reproduce_command({"data": "ag", "epochs": "3", "splits": "runs:/x/data"})
    assert cmd == "mlflow run . -e main --env-manager local -P data=ag -P epochs=3"


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
