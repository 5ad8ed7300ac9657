"""Monitoring in production: drift checks (`drift.py`), the model's reference through its lineage
(`reference.py`), reading a batch and checking it (`batch.py`), plots, the drift report, and the
per-model series run that charts batches over time (`series.py`)."""
