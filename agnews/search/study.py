"""The Optuna study a sweep searches in: where it lives, starting or continuing it, closing the
trials a killed sweep left running, and the pruner both the sweep and its train runs use.

A study lives in a journal file (`.sweeps/<study>.journal`, Optuna's crash-safe append-only
log, readable by several processes) unless `storage` names a database, e.g. the team's
PostgreSQL. A sweep holds a lock on its study's journal while it runs, so a second sweep of
the same study on this machine stops with one line instead of racing it; every trial still
RUNNING when a sweep starts was then left by a killed one. On a database, Optuna's heartbeat
tells those apart (several machines may run one study at once).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from agnews import PROJECT_DIR
from agnews.errors import UserError
from agnews.tracking.locks import LOCKS, held
from agnews.training.callbacks import Callback

# Deferred imports: optuna (about a second): train imports TrialPruning's module only in a sweep's
# trials, and a sweep loads it after its arguments parse.

SWEEPS = PROJECT_DIR / ".sweeps"
HEARTBEAT_SECONDS = 60  # a database trial without a heartbeat for 2 of these was left behind


def study_name(name: str) -> str:
    return name or "sweep-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def storage_location(study: str, storage: str, folder: Path = SWEEPS) -> str:
    """The storage a study lives in: a database URL as given, else its journal file. A URL
    with a password is refused: the location is logged as a run parameter."""
    if not storage:
        return str(folder / f"{study}.journal")
    if "://" not in storage:
        raise UserError(f"storage='{storage}' is not a database URL: pass e.g. postgresql+"
                        "psycopg://mlflow@127.0.0.1/optuna, or leave it empty for a journal file")

    try:
        url = urlsplit(storage)
        _ = url.port  # raises on a port that is not a number
    except ValueError:
        raise UserError(f"storage='{storage}' is not a database URL: pass e.g. "
                        "postgresql+psycopg://mlflow@127.0.0.1/optuna") from None
    if url.password:
        raise UserError("storage carries a password, which would be logged with the run: drop "
                        "it from the URL and put it in a libpq password file (PGPASSFILE)")
    return storage


def is_journal(location: str) -> bool:
    return "://" not in location


def open_storage(location: str):
    import optuna

    if is_journal(location):
        from optuna.storages.journal import JournalFileBackend

        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(location))
    with warnings.catch_warnings():  # Optuna marks the heartbeat experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(location, heartbeat_interval=HEARTBEAT_SECONDS,
                                          grace_period=2 * HEARTBEAT_SECONDS)


@contextlib.contextmanager
def study_lock(name: str, location: str, folder: Path = LOCKS) -> Iterator[None]:
    """Held by the one sweep that may run a journal study on this machine; a second stops
    with one line (a database study may be run by several: Optuna's heartbeat keeps them
    apart)."""
    if not is_journal(location):
        yield
        return
    with held(f"sweep-{name}", f"study '{name}' is being run by another sweep on this machine: "
              "let it finish, or start a new -P study= (more trials at once: -P n_jobs)",
              folder, refuse=True):
        yield


def pruner(startup_trials: int):
    """Median pruning on each epoch's val_loss, from the first epoch on."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)


def open_study(name: str, location: str, settings: dict[str, str], startup_trials: int,
               seed: int):
    """Create the study, or continue it if it exists and was searching the same thing:
    `settings` (the space and every fixed parameter) must equal what it was created with."""
    import optuna

    try:
        storage = open_storage(location)
        exists = name in optuna.get_all_study_names(storage)
    except Exception as err:  # a database that refuses, a journal that cannot be read
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"cannot open the study storage {location} ({first}): check the URL "
                        "and that the database exists, or leave -P storage= empty") from None
    before = len(optuna.load_study(study_name=name, storage=storage).trials) if exists else 0
    # Seeded, so a new study draws the same trials again; offset by the trials it holds, so a
    # continued one does not draw its first trials' values a second time.
    study = optuna.create_study(
        study_name=name, storage=storage, direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed + before), pruner=pruner(startup_trials))
    wanted = json.dumps(settings, sort_keys=True)
    if not exists:
        study.set_user_attr("settings", wanted)
        study.set_user_attr("pruner_startup_trials", startup_trials)
    elif study.user_attrs.get("settings") != wanted:
        old = json.loads(study.user_attrs.get("settings", "{}"))
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise UserError(f"study '{name}' searched with other settings ({', '.join(changed)}): "
                        "pass the same parameters to continue it, or a new -P study=")
    return study


def close_stale(study, journal: bool) -> list:
    """The trials a killed sweep left RUNNING, now marked failed (the caller holds the study's
    lock for a journal; a database's heartbeat finds them)."""
    import optuna
    from optuna.trial import TrialState

    if not journal:
        before = {t.number for t in study.get_trials(states=(TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return [t for t in study.get_trials(states=(TrialState.FAIL,)) if t.number not in before]
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study.tell(trial.number, state=TrialState.FAIL)
    return stale


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def beaten_by(value: float, completed) -> tuple[int, float] | None:
    """(number, value) of the completed trial with the lowest val_loss, if strictly below
    `value`; else None. `completed`: (number, value) pairs. A trial beaten already cannot
    become the study's best (ties are not beaten: either may be chosen)."""
    best = min(completed, key=lambda trial: trial[1], default=None)
    return best if best is not None and best[1] < value else None


class TrialPruning(Callback):
    """In a train run started by a sweep, a training callback: hands each epoch's val_loss to
    its trial and stops training when the study's median pruner says to (never after the
    last epoch, which completes the trial)."""

    def __init__(self, study: str, location: str, number: int, epochs: int):
        import optuna

        storage = open_storage(location)
        self.study = optuna.load_study(study_name=study, storage=storage)
        self.study.pruner = pruner(int(self.study.user_attrs.get("pruner_startup_trials", 5)))
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study), number)
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.epochs, self.reason = epochs, ""

    def beaten_by(self, value: float) -> tuple[int, float] | None:
        """The study's completed trial that beat a kept val_loss of `value`, read now (other
        trials may have completed while this one trained), or None."""
        from optuna.trial import TrialState

        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return beaten_by(value, [(t.number, t.value) for t in done])

    def on_epoch(self, epoch: int, row: dict[str, float]) -> bool:
        self.trial.report(row["val_loss"], epoch)
        if epoch < self.epochs and self.trial.should_prune():
            self.reason = f"val_loss {row['val_loss']:.4f} at epoch {epoch}"
            return True
        return False
