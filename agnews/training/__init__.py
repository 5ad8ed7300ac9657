"""Training: the loop (AdamW, length-grouped batches, per-epoch metrics, best epoch), its
checkpoints for resuming after a crash, and its curves."""
