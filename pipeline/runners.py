"""Beam pipeline arguments for the runner the RunConfig names (docs/deploy.md, "Runners").

    direct               DirectRunner in memory, one worker (the default; Beam's defaults, no flags)
    direct_multiprocess  DirectRunner, multi_processing, direct_num_workers worker processes
    portable             PortableRunner; beam_args name the job service and the SDK environment,
                         e.g. --job_endpoint=localhost:8099 --environment_type=LOOPBACK
    dataflow             DataflowRunner; beam_args must give --project, --region, --temp_location.
                         Workers get the semids package from --setup_file (added here) unless
                         beam_args name a worker image holding it (--sdk_container_image) or
                         their own --setup_file.

The config's beam_args follow the runner's own (Beam takes the last value of a repeated flag).
ContentEmbedder's workers, onnxruntime threads and spinning: content_embedder_plan.
"""
import os
from typing import List, NamedTuple, Optional, Sequence

from pipeline.config import REPO_ROOT, RunConfig

# Dataflow flags the run cannot do without: (flag, accepted alternatives).
DATAFLOW_REQUIRED = (("--project", ()), ("--region", ()),
                     ("--temp_location", ("--gcp_temp_location",)))
# A worker image with the package already installed: no --setup_file needed.
WORKER_IMAGE_FLAGS = ("--sdk_container_image", "--worker_harness_container_image")
# Under direct_multiprocess, the item side (ItemExampleGen, ContentEmbedder, SemanticIdGen) of a
# catalog up to this many items runs in one process: starting two workers costs more than it
# saves. ML-1M's 3,883 items took 26.5 s, 43.0 s and 19.5 s over two workers; ML-100K's 1,682
# took 0.8 s, 6.7 s and 3.0 s in one process.
ITEM_SIDE_IN_PROCESS_MAX_ITEMS = 10_000
IN_PROCESS_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


def has_flag(args: Sequence[str], flag: str) -> bool:
    """Whether `flag` is given with a value in `args`, as `--flag=value` or `--flag value`."""
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return bool(arg[len(flag) + 1:])
        if arg == flag:
            return i + 1 < len(args) and not args[i + 1].startswith("--")
    return False


def setup_file() -> str:
    """The setup.py Dataflow workers install the package from (the repository's)."""
    return os.path.join(REPO_ROOT, "setup.py")


def beam_pipeline_args(config: RunConfig) -> List[str]:
    extra = list(config.beam_args)
    if config.runner == "direct":
        # No flags: Beam's defaults are exactly DirectRunner, in_memory, one worker. Empty Beam
        # args also keep TFX from packing its own installation into a 42 MB sdist for every
        # Beam component it runs (it does so for any non-empty args without a dependency flag,
        # and leaves it in /tmp), which the in-process runner never uses.
        args = []
    elif config.runner == "direct_multiprocess":
        args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                f"--direct_num_workers={config.direct_num_workers}"]
        # The local workers import the installed packages (Beam's local runner stages nothing).
        # A dependency flag keeps TFX from building a 42 MB sdist of itself into /tmp for each
        # Beam component (about 2 s each), which it does for any args without one.
        if os.path.isfile(setup_file()):
            args.append(f"--setup_file={setup_file()}")
    elif config.runner == "portable":
        if not has_flag(extra, "--job_endpoint"):
            raise ValueError(
                "runner=portable needs --job_endpoint in beam_args (e.g. --beam_arg="
                "--job_endpoint=localhost:8099 --beam_arg=--environment_type=LOOPBACK, with "
                "`python -m apache_beam.runners.portability.local_job_service_main --port=8099` "
                "running; docs/deploy.md, \"Runners\")")
        args = ["--runner=PortableRunner"]
    elif config.runner == "dataflow":
        missing = [" or ".join((flag,) + alt) for flag, alt in DATAFLOW_REQUIRED
                   if not any(has_flag(extra, f) for f in (flag,) + alt)]
        if missing:
            raise ValueError(
                f"runner=dataflow needs {', '.join(missing)} in beam_args (e.g. "
                "--beam_arg=--project=P --beam_arg=--region=R "
                "--beam_arg=--temp_location=gs://BUCKET/tmp; docs/deploy.md, \"Runners\")")
        args = ["--runner=DataflowRunner"]
        if not any(has_flag(extra, f) for f in WORKER_IMAGE_FLAGS + ("--setup_file",)):
            path = setup_file()
            if not os.path.isfile(path):
                raise ValueError(
                    f"runner=dataflow: {path} does not exist (semids is installed, not run from "
                    "the repository); give the workers the package with "
                    "--beam_arg=--sdk_container_image=IMAGE or --beam_arg=--setup_file=PATH")
            args.append(f"--setup_file={path}")
    else:  # RunConfig.validate() rejects this earlier
        raise ValueError(f"unknown runner {config.runner!r}")
    return args + extra


def item_side_beam_args(config: RunConfig, num_items: Optional[int]) -> List[str]:
    """Beam args the item-side components add to the pipeline's: one process for a small
    catalog under direct_multiprocess (ITEM_SIDE_IN_PROCESS_MAX_ITEMS), else none."""
    if (config.runner == "direct_multiprocess" and num_items is not None
            and num_items <= ITEM_SIDE_IN_PROCESS_MAX_ITEMS):
        return list(IN_PROCESS_ARGS)
    return []


def local_cpus() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class EncoderPlan(NamedTuple):
    """How ContentEmbedder runs the encoder: its Beam args (after the pipeline's), its worker
    processes on this machine (None: the runner decides), and per worker process the model
    calls run at once (threads), the onnxruntime threads per call and spinning (None: the
    encoder's defaults)."""
    beam_args: List[str]
    workers: Optional[int]
    parallel_calls: int
    num_threads: Optional[int]
    allow_spinning: Optional[bool]


def content_embedder_plan(config: RunConfig, num_items: Optional[int],
                          cpus: Optional[int] = None) -> EncoderPlan:
    """ContentEmbedder's parallelism from RunConfig.encoder_workers / encoder_threads
    (docs/perf/encoder.md).

    direct, direct_multiprocess: encoder_workers worker processes (None: 1), each with
      encoder_threads threads (None: the cores divided among the workers, at least 1); each
      thread runs its own model calls on one onnxruntime thread, spinning off. One worker runs
      in memory (under direct_multiprocess too: its process start-up, ~40 s on the 2-core
      machine, buys nothing that the threads do not); several are the component's
      --direct_num_workers of multi_processing (direct_multiprocess only; the executor then
      spreads the items over them). A catalog up to ITEM_SIDE_IN_PROCESS_MAX_ITEMS items with
      neither option set keeps the encoder's defaults: one call at a time on the cores (up to 8)
      with onnxruntime's spinning, as before.
    dataflow (not measured here): encoder_workers -> --number_of_worker_harness_threads of the
      component's job (Dataflow runs one SDK process per vCPU, each with that many threads
      calling the encoder); encoder_threads -> model calls at once per call of the harness, on
      one onnxruntime thread each. Unset: Dataflow's and the encoder's defaults.
    portable: encoder_threads as for dataflow; the job service decides the workers."""
    workers, threads = config.encoder_workers, config.encoder_threads
    if config.runner in ("direct", "direct_multiprocess"):
        workers = workers or 1
        args: List[str] = []
        if config.runner == "direct_multiprocess":
            args = (list(IN_PROCESS_ARGS) if workers == 1 else
                    ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
        small = num_items is not None and num_items <= ITEM_SIDE_IN_PROCESS_MAX_ITEMS
        if workers == 1 and threads is None and small:
            return EncoderPlan(args, 1, 1, None, None)
        threads = threads or max(1, (cpus or local_cpus()) // workers)
        return EncoderPlan(args, workers, threads, 1, False)
    args = ([f"--number_of_worker_harness_threads={workers}"]
            if workers and config.runner == "dataflow" else [])
    if threads is None and not args:
        return EncoderPlan([], None, 1, None, None)
    return EncoderPlan(args, None, threads or 1, 1, False)
