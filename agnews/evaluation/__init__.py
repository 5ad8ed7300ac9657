"""Evaluation: classification metrics from class probabilities, prediction tables, and the
plots of the test split."""
