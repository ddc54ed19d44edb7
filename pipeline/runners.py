"""Beam pipeline arguments for the runner the RunConfig names."""
from typing import List

from pipeline.config import RunConfig


def beam_pipeline_args(config: RunConfig) -> List[str]:
    if config.runner == "direct":
        args = ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    elif config.runner == "direct_multiprocess":
        args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                f"--direct_num_workers={config.direct_num_workers}"]
    elif config.runner == "portable":
        # job endpoint and environment come from beam_args (e.g. --job_endpoint=localhost:8099
        # --environment_type=LOOPBACK)
        args = ["--runner=PortableRunner"]
    elif config.runner == "dataflow":
        # --project, --region, --temp_location come from beam_args; workers install this package.
        args = ["--runner=DataflowRunner", f"--setup_file={_setup_file()}"]
    else:  # RunConfig.validate() rejects this earlier
        raise ValueError(f"unknown runner {config.runner!r}")
    return args + list(config.beam_args)


def _setup_file() -> str:
    import os
    from pipeline.config import REPO_ROOT
    return os.path.join(REPO_ROOT, "setup.py")
