"""Hyperparameter search: the space (`space.py`), the Optuna study and the train runs' pruning hook
(`study.py`), what a trial and the study come to (`trials.py`), and the plots (`plots.py`)."""
