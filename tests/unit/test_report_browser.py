"""The HTML report in a real headless Chromium: it loads with no console errors, every
image decodes, and it fetches nothing from the network.

Uses Debian's chromium and chromium-driver (`.ci/run` installs them if missing). Outside CI,
the test is skipped where they are absent; in CI (CI=true) their absence is a failure.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from browser import browser_or_skip
from test_report import GOOD, facts  # noqa: I001 - the crafted facts of the unit tests

from agnews.data import plots as data_plots
from agnews.evaluation import plots as eval_plots
from agnews.report.content import build_report
from agnews.report.document import to_html
from agnews.training import plots as training_plots


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    f = facts()
    labels = np.array([0, 1, 2, 3, 2])
    probs = np.array([[.7, .1, .1, .1], [.1, .6, .2, .1], [.2, .2, .5, .1], [.1, .1, .6, .2],
                      [.1, .1, .7, .1]])
    f.images = {"loss_curves.png": png(training_plots.loss_curves(GOOD)),
                "confusion_matrix.png": png(eval_plots.confusion_matrices(labels, probs.argmax(1))),
                "reliability_diagram.png": png(eval_plots.reliability_diagram(labels, probs)),
                "class_balance.png": png(data_plots.class_balance(pd.DataFrame(
                    {"split": ["train"] * 4, "class": ["World", "Sports", "Business", "Sci/Tech"],
                     "rows": [3, 4, 5, 6]})))}
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(to_html(build_report(f), "AG News fine-tuning report"), encoding="utf-8")
    return path


def test_report_loads_in_chromium_without_errors_and_every_image_decodes(report_file):
    driver = browser_or_skip()
    try:
        driver.get(report_file.as_uri())
        assert driver.title == "AG News fine-tuning report"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) == 4
        for complete, width, alt in images:
            assert complete and width > 0, f"image '{alt}' did not decode"
        headings = driver.execute_script(
            "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        assert headings[0] == "Summary" and headings[-1] == "Reproduce"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == []
        requested = [e["message"] for e in driver.get_log("performance")
                     if "Network.requestWillBeSent" in e["message"]]
        assert not any('"url":"http' in m for m in requested), "the report fetched a URL"
    finally:
        driver.quit()


def test_the_check_catches_an_image_that_does_not_decode(tmp_path):
    f = facts()  # its images are a bare PNG signature: not a picture
    path = tmp_path / "broken.html"
    path.write_text(to_html(build_report(f), "broken"), encoding="utf-8")
    driver = browser_or_skip()
    try:
        driver.get(path.as_uri())
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.naturalWidth)")
        assert widths and all(w == 0 for w in widths)
    finally:
        driver.quit()
