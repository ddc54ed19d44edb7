"""Data only: the curated TFMD schemas (interactions.pbtxt), shipped as package data so that
pipeline.config.INTERACTIONS_SCHEMA (<package root>/schemas/...) resolves in an installed semids
(sdist, wheel, the pipeline image) as it does in the repository."""
