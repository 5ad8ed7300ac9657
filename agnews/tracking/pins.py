"""Pinning the Hub ids `main` and `sweep` are given to the commits the Hub (or, offline, the
local cache) names, once, before any step: every step then reads the same commits, and they
are part of the step cache's keys."""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agnews.config import DataConfig, TokenizeConfig, TrainConfig
from agnews.errors import UserError
from agnews.hub import is_hub_id, offline_mode, resolve


def pin_revisions(data: DataConfig, tok: TokenizeConfig, train: TrainConfig):
    """The configs with each Hub id's revision replaced by its commit, and the pins made
    (`{"data"|"model": agnews.hub.Revision}`); local paths pass through, but a revision given
    for one is a mistake worth a clear line."""
    asked = {}
    for flag, location, revision, kind in (("data", data.data, data.data_revision, "dataset"),
                                           ("model", tok.model, tok.model_revision, "model")):
        if is_hub_id(location):
            asked[flag] = (location, kind, revision)
        elif revision != "main" and Path(location).expanduser().exists():
            raise UserError(f"{flag}_revision={revision} applies to a Hub id, but {flag} "
                            f"'{location}' is a local path: drop -P {flag}_revision")
    # Both at once: a Hub that does not answer costs one timeout, not one per id. Results (and
    # a failure) come back in order, data first, as if asked one after the other.
    with ThreadPoolExecutor(max(len(asked), 1)) as pool:
        futures = {flag: pool.submit(resolve, *args) for flag, args in asked.items()}
        pins = {flag: future.result() for flag, future in futures.items()}
    if "data" in pins:
        data = dataclasses.replace(data, data_revision=pins["data"].sha)
    if "model" in pins:
        tok = dataclasses.replace(tok, model_revision=pins["model"].sha)
        train = dataclasses.replace(train, model_revision=pins["model"].sha)
    return data, tok, train, pins


def go_offline_if_unreachable(pins: dict) -> None:
    """When every Hub id came from the cache because the Hub did not answer, the steps get
    HF_HUB_OFFLINE=1, the libraries' own switch, instead of each waiting for the Hub again."""
    if pins and not offline_mode() and not any(pin.online for pin in pins.values()):
        os.environ["HF_HUB_OFFLINE"] = "1"
        print(f"main: {next(iter(pins.values())).note}; using the local Hugging Face cache",
              flush=True)
