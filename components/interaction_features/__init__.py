"""InteractionFeatures: time split, held-out items and history features (see core.py)."""
