"""The sweep's plots, drawn by Optuna's matplotlib visualisations, each returned as a Figure:
the best val_loss as trials went, which parameters mattered, every trial's parameters against
its val_loss, and each trial's val_loss per epoch (where the pruner stopped it)."""
from __future__ import annotations

import warnings

from matplotlib.figure import Figure

# Deferred imports: optuna (about a second), only in a sweep's plots.

OBJECTIVE = "val_loss (kept epoch)"


def _figure(draw, study, title: str, size=(9.0, 5.0), pad: float = 6.0, **kwargs) -> Figure:
    import optuna

    with warnings.catch_warnings():
        # Optuna marks its matplotlib backend experimental; the plots are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Attempting to set identical")
        ax = draw(study, **kwargs)
    for loc in ("left", "right"):  # Optuna puts some of its titles there
        ax.set_title("", loc=loc)
    ax.set_title(title, pad=pad)
    figure = ax.figure
    figure.set_size_inches(*size)
    figure.tight_layout()
    return figure


def optimisation_history(study) -> Figure:
    from optuna.visualization.matplotlib import plot_optimization_history

    return _figure(plot_optimization_history, study,
                   "Search: val_loss of each trial and the best so far", target_name=OBJECTIVE)


def parameter_importances(study) -> Figure | None:
    """fANOVA importances; None while fewer than two trials completed (nothing to compare)."""
    from optuna.trial import TrialState
    from optuna.visualization.matplotlib import plot_param_importances

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return None
    return _figure(plot_param_importances, study,
                   "Search: how much each parameter explains val_loss", target_name=OBJECTIVE)


def parallel_coordinates(study) -> Figure:
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    return _figure(plot_parallel_coordinate, study,
                   "Search: each completed trial's parameters and val_loss", size=(11.0, 5.5),
                   pad=16,
                   target_name=OBJECTIVE)


def val_loss_per_epoch(study) -> Figure:
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization.matplotlib import plot_intermediate_values

    figure = _figure(plot_intermediate_values, study,
                     "Search: val_loss per epoch of every trial (pruned trials stop early)")
    ax = figure.axes[0]
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def search_figures(study) -> dict[str, Figure]:
    """File name -> Figure, for every plot the study has enough trials for."""
    figures = {"search_history.png": optimisation_history(study),
               "search_importances.png": parameter_importances(study),
               "search_parallel.png": parallel_coordinates(study),
               "search_val_loss.png": val_loss_per_epoch(study)}
    return {name: fig for name, fig in figures.items() if fig is not None}
