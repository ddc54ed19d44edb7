"""Validating ExampleGen for the bring-your-own-data CSVs (data/format.py)."""
from components.example_gen.component import ValidatingExampleGen  # noqa: F401
