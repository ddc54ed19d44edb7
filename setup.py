"""semids: Semantic IDs in a TFX ranking pipeline.

Installed into the project venv in editable mode by `make setup`; Dataflow workers install it
from this file with `--setup_file` (the pinned stack itself comes from the worker image).
"""
import setuptools

setuptools.setup(
    name="semids",
    version="0.1.0",
    description="Semantic IDs (RQ-VAE + SentencePiece) in a TFX/TFRS ranking pipeline",
    python_requires=">=3.10,<3.11",
    packages=setuptools.find_packages(
        include=["pipeline", "pipeline.*", "components", "components.*", "models", "models.*",
                 "data", "data.*", "serving", "serving.*", "schemas"]),
    # schemas/ is a data-only package: schemas.INTERACTIONS_SCHEMA is
    # <package root>/schemas/interactions.pbtxt, installed or not (MANIFEST.in lists it too).
    package_data={"": ["*.pbtxt"]},
    include_package_data=True,
    entry_points={"console_scripts": ["semids = pipeline.cli:main"]},
)
