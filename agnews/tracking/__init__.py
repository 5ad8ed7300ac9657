"""MLflow plumbing: a step's run and its inputs, lineage, the step cache and its locks, runs a
crash left RUNNING, and how `main` chains the steps as nested runs."""
