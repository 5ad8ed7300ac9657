"""MLflow plumbing: a step's run and its inputs, lineage, the step cache, the Model Registry,
and how `main` chains the steps as nested runs."""
