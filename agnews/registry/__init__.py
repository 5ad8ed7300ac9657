"""The Model Registry: the promotion policy (policy.py) and the registry calls (versions.py)."""
