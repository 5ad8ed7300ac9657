"""The Model Registry: the promotion policy (policy.py) and its paired tests (paired.py), the
registry calls (versions.py) and the model card (card.py)."""
