"""Entry point of the TFX CLI route (local engine):

    tfx pipeline create --engine=local --pipeline_path=$PWD/pipeline/local_runner.py
    tfx run create --engine=local --pipeline_name=semids

runs the default RunConfig, or the JSON config file named by SEMIDS_CONFIG
(`semids show-config ... > my.json` writes one).
"""
import os
import sys

# The tfx CLI runs this file by path: make the project importable when it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import logging  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

from pipeline import pipeline as pipeline_lib  # noqa: E402
from pipeline.config import load_config_from_env  # noqa: E402
from pipeline.inputs import prepare_inputs  # noqa: E402


def run():
    config = load_config_from_env()
    tfx.orchestration.LocalDagRunner().run(
        pipeline_lib.create_pipeline(config, prepare_inputs(config)))


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    run()
