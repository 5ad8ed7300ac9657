"""What a step does when its tracking server stops answering.

MLflow's client retries every REST call (tracking, registry and proxied artifacts) on refused
or dropped connections, timeouts and 408/429/5xx answers, with exponential back-off. We set
that policy explicitly (`RETRIES`, each `setdefault`, so a user's own environment wins) rather
than inherit MLflow's: 6 retries at factor 2 wait 0, 4, 8, 16, 32 and 64 s, about two minutes
per call, which rides over a server restart and tells a user of a lost server within minutes
(MLflow's own 7 retries wait about four).

When a call has used up its retries, the steps give up on the server for the rest of the
process (`fail_fast`): closing the run would call it again, each call waiting the whole back-off
once more. The step then ends with one line naming the server and what to do; `main` resumes
the next time from the finished steps and train's last checkpoint.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from agnews.errors import UserError

RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2"}
BACKOFF_MAX_S = 120  # urllib3's cap on one wait


class ServerLost(UserError):
    """The tracking server did not answer within the client's retries."""


def set_retries() -> None:
    """The client's retry policy, unless the environment already sets one."""
    for name, value in RETRIES.items():
        os.environ.setdefault(name, value)


def retry_seconds(retries: int, factor: int) -> float:
    """How long one call waits in all before giving up (urllib3 2: no wait before the first
    retry, then factor * 2^(k-1) s, capped; MLflow adds up to 1 s of jitter to each)."""
    return float(sum(min(BACKOFF_MAX_S, factor * 2 ** (k - 1)) for k in range(2, retries + 1)))


def is_lost(err: BaseException) -> bool:
    """Whether `err` (or what it was raised from or during) is MLflow's client giving up on
    its server: it wraps the last connection error or timeout, after the retries, in an
    MlflowException "API request to <url> failed with ...". An error the server answered with
    (a missing run, a refused login) is not."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = str(err)
        if isinstance(err, ServerLost) or text.startswith("API request to") and any(
                m in text for m in ("Max retries exceeded", "timeout exception")):
            return True
        err = err.__cause__ or err.__context__
    return False


_policy_before_giving_up: dict[str, int] = {}


def policy() -> dict[str, int]:
    """The retries and back-off factor this process's calls were given (before `give_up`)."""
    return _policy_before_giving_up or {
        name: int(os.environ.get(name, default)) for name, default in RETRIES.items()}


def give_up() -> None:
    """Every later call of this process fails at once instead of retrying."""
    if not _policy_before_giving_up:
        _policy_before_giving_up.update(policy())
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"


def lost_line(uri: str) -> str:
    retries, factor = policy().values()
    waited = f" after {retries} retries over about {retry_seconds(retries, factor):.0f} s" \
        if retries else ""
    # "or only with errors": 5xx answers are retried too (a server whose database is down)
    return (f"the tracking server {uri} did not answer, or only with errors,{waited}: bring it "
            "back, then rerun the same command (main reuses the steps that finished and train "
            "resumes from its last checkpoint; MLFLOW_HTTP_REQUEST_MAX_RETRIES sets how long "
            "to wait)")


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Inside an MLflow run's block: if the server is lost, give up on it before the run's
    own exit calls it, and say so in one line (the ServerLost reaches `run_step`)."""
    try:
        yield
    except Exception as err:
        if not is_lost(err):
            raise
        give_up()
        if isinstance(err, ServerLost):
            raise
        import mlflow

        raise ServerLost(lost_line(mlflow.get_tracking_uri())) from err
