"""Headless Chromium for tests that look at pages as a user would (the report, the MLflow UI).

Uses Debian's chromium and chromium-driver (`.ci/run` installs them if missing). Outside CI,
a test is skipped where they are absent; in CI (CI=true) their absence is a failure.
"""
from __future__ import annotations

import os
import shutil

import pytest


def browser_or_skip():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI (.ci/run installs them)")
        pytest.skip("chromium/chromedriver not installed "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # a desktop-sized window: the MLflow UI renders only the table rows in view
                 "--window-size=1400,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver),
                            options=options)
