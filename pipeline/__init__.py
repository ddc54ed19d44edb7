"""The pipeline layer: RunConfig, create_pipeline, runners, reports, the experiment and the CLI."""
import models  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads: models/__init__.py)
