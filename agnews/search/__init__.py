"""Hyperparameter search: the space (`space.py`)."""
