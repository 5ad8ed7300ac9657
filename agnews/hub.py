"""Hugging Face Hub ids: which commit a model or data set id means, online or from the cache.

The rules are the Hugging Face libraries' own: `HF_HUB_OFFLINE=1` means the local cache only;
otherwise the Hub is asked (at `HF_ENDPOINT`, through any `HTTPS_PROXY`, within
`HF_HUB_ETAG_TIMEOUT`) and, when it cannot be reached, the cache answers. `resolve` asks once
per id through huggingface_hub's own client and turns "neither the Hub nor the cache has it"
into one line naming the fix, instead of a traceback after the libraries' retries.

The commit found (`Revision.sha`) is what every later load pins, so tokenize and train read
the same files even if the Hub moves meanwhile, and the step cache reruns what depends on an
id when its commit changes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agnews.errors import UserError

# Deferred imports: huggingface_hub, httpx and datasets load where the Hub or its cache is asked: a
# local folder or file never needs them.

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
KINDS = ("model", "dataset")


@dataclass(frozen=True)
class Revision:
    """A Hub id pinned to a commit, and where that answer came from."""

    repo_id: str
    kind: str          # model | dataset
    requested: str     # what the user asked for: a branch, tag or commit
    sha: str           # the commit it means
    online: bool       # True: the Hub answered; False: the local cache did
    note: str = ""     # why the cache answered (offline mode, or the Hub's error)


def offline_mode() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def is_hub_id(location: str) -> bool:
    """A string that names a Hub repo rather than a local path (which must then exist)."""
    path = Path(location).expanduser()
    return (not path.exists() and HUB_ID.match(location) is not None
            and not location.startswith((".", "/", "~"))
            and path.suffix not in {".csv", ".parquet"})


def _flag(kind: str) -> str:
    return "data" if kind == "dataset" else "model"


def _ask_hub(repo_id: str, kind: str, requested: str) -> str:
    """The commit the Hub gives for `requested`; raises on network errors, UserError on a
    wrong id or revision."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        info = HfApi().repo_info(repo_id, repo_type=kind, revision=requested,
                                 timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except RevisionNotFoundError:
        raise UserError(f"revision '{requested}' does not exist for {kind} '{repo_id}' on the "
                        f"Hub: pass an existing branch, tag or commit as "
                        f"-P {_flag(kind)}_revision=") from None
    except GatedRepoError:
        raise UserError(f"{kind} '{repo_id}' is gated on the Hub: accept its terms on "
                        "huggingface.co and log in with `hf auth login`") from None
    except RepositoryNotFoundError:
        raise UserError(f"'{repo_id}' is not a {kind} on the Hugging Face Hub (or it is "
                        f"private: log in with `hf auth login`): check the id, or pass a local "
                        f"folder as -P {_flag(kind)}=<folder>") from None
    if kind == "model" and not COMMIT.match(requested):
        # Later loads pin the commit, which leaves no `refs/<branch>` in the cache; fetching
        # config.json by the branch name records it, so an offline run (ours or any other
        # tool's) can still find the model by that name.
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            hf_hub_download(repo_id, "config.json", revision=requested,
                            etag_timeout=constants.HF_HUB_ETAG_TIMEOUT)
        except EntryNotFoundError:
            raise UserError(f"model '{repo_id}' has no config.json, so it is not a "
                            "transformers model: pass a model id such as "
                            "huawei-noah/TinyBERT_General_4L_312D") from None
    return info.sha


def _unreachable(err: Exception) -> bool:
    """Errors that mean "no answer from the Hub" (not "the Hub said no")."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    # LocalEntryNotFoundError: a download that lost the network and found no cached copy.
    if isinstance(err, (httpx.TransportError, OfflineModeIsEnabled, ConnectionError,
                        LocalEntryNotFoundError)):
        return True
    response = getattr(err, "response", None)
    return isinstance(err, HfHubHTTPError) and response is not None and response.status_code >= 500


def cached_model_sha(repo_id: str, requested: str) -> str | None:
    """The commit of `requested` in the hub cache, if its config.json is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=requested)
    return Path(found).parent.name if isinstance(found, str) else None


def cached_dataset_sha(repo_id: str, requested: str) -> str | None:
    """The commit that `datasets.load_dataset` would read offline: the newest prepared copy
    in the datasets cache (offline, it ignores the revision asked for, so a pinned commit
    must be that one)."""
    from datasets.packaged_modules.cache.cache import _find_hash_in_cache

    try:
        _, _, sha = _find_hash_in_cache(repo_id, None, None, {}, None)
    except ValueError as err:
        if str(err).startswith("Couldn't find cache"):
            return None
        raise UserError(f"data set '{repo_id}' in the local cache: "
                        f"{str(err).splitlines()[0]}: pass a data set with one configuration "
                        "or a local folder as -P data=<folder>") from None
    if COMMIT.match(requested) and sha != requested:
        raise UserError(f"the local cache holds revision {sha} of data set '{repo_id}', not "
                        f"{requested}, and the Hub cannot be used: connect once to fetch it, or "
                        f"pass -P data_revision={sha}")
    return sha


def cache_location(kind: str) -> str:
    if kind == "model":
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    import datasets.config

    return str(datasets.config.HF_DATASETS_CACHE)


def resolve(repo_id: str, kind: str, requested: str = "main") -> Revision:
    """Pin `repo_id` at `requested` to a commit: from the Hub when it answers, else from the
    local cache; one-line `UserError` when neither can."""
    from huggingface_hub import constants

    if offline_mode():
        note = "HF_HUB_OFFLINE is set"
    else:
        try:
            return Revision(repo_id, kind, requested, _ask_hub(repo_id, kind, requested), True)
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - sorted by _unreachable, re-raised otherwise
            if not _unreachable(err):
                raise
            first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
            note = (f"the Hub at {constants.ENDPOINT} did not answer "
                    f"({type(err).__name__}{': ' + first if first else ''})")
    sha = (cached_model_sha if kind == "model" else cached_dataset_sha)(repo_id, requested)
    if sha is None:
        fix = ("unset HF_HUB_OFFLINE and connect once to fill the cache" if offline_mode()
               else "check the connection (HF_ENDPOINT, HTTPS_PROXY) and run again")
        raise UserError(f"{kind} '{repo_id}' is not in the local Hugging Face cache "
                        f"({cache_location(kind)}) and {note}: {fix}, or pass a local folder "
                        f"as -P {_flag(kind)}=<folder>")
    return Revision(repo_id, kind, requested, sha, False, note)
