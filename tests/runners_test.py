"""Beam runners (pipeline/runners.py; docs/deploy.md, "Runners"): the arguments of every runner, and the
full semids pipeline on a tiny synthetic dataset under each runner that can run locally:

- PortableRunner against Beam's own job service (a subprocess), SDK worker LOOPBACK (in the
  test process): slow (~95 s on 2 cores; the default suite checks every runner's arguments).
- PortableRunner with the SDK workers in separate processes started by Beam's worker pool
  (--environment_type=EXTERNAL): slow (~110 s).
- DirectRunner multi_processing with 2 worker processes: slow (140 s to 5 min on 2 cores,
  depending on the load: every Beam component starts two worker processes that import
  TensorFlow).

The two portable tests also ask the job service which pipelines it ran, so each Beam component is
checked to have run there (not on an in-process DirectRunner).
"""
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipeline.config import REPO_ROOT, RunConfig
from pipeline.runners import beam_pipeline_args, has_flag

# --- beam_pipeline_args --------------------------------------------------------------------------

DATAFLOW_OK = ["--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]


def _args(runner, beam_args=(), **kw):
    return beam_pipeline_args(RunConfig(runner=runner, beam_args=list(beam_args), **kw))


def test_direct_runs_in_memory_with_one_worker():
    # Beam's defaults: DirectRunner, in_memory, one worker; no flags, so TFX builds no sdist
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    assert _args("direct") == []
    assert _args("direct", ["--x=1"]) == ["--x=1"]
    options = PipelineOptions([]).view_as(DirectOptions)
    assert (options.direct_running_mode, options.direct_num_workers) == ("in_memory", 1)
    from apache_beam.options.pipeline_options import StandardOptions
    assert PipelineOptions([]).view_as(StandardOptions).runner in (None, "DirectRunner")


def test_direct_multiprocess_uses_direct_num_workers():
    # --setup_file: a dependency flag, so TFX builds no sdist of itself per Beam component
    assert _args("direct_multiprocess", direct_num_workers=3) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing",
        "--direct_num_workers=3", f"--setup_file={os.path.join(REPO_ROOT, 'setup.py')}"]


def test_the_item_side_of_a_small_catalog_runs_in_one_process_under_direct_multiprocess():
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    from pipeline.runners import ITEM_SIDE_IN_PROCESS_MAX_ITEMS, item_side_beam_args
    multi = RunConfig(runner="direct_multiprocess")
    small = item_side_beam_args(multi, ITEM_SIDE_IN_PROCESS_MAX_ITEMS)
    # The component's args follow the pipeline's (TFX appends them), and Beam takes the last.
    options = PipelineOptions(beam_pipeline_args(multi) + small).view_as(DirectOptions)
    assert (options.direct_running_mode, options.direct_num_workers) == ("in_memory", 1)
    assert item_side_beam_args(multi, ITEM_SIDE_IN_PROCESS_MAX_ITEMS + 1) == []
    assert item_side_beam_args(multi, None) == []  # not counted (a remote data_dir)
    assert item_side_beam_args(RunConfig(runner="direct"), 10) == []


def test_create_pipeline_runs_a_small_catalogs_item_side_in_one_process(tmp_path):
    # (a larger catalog gets no component args: item_side_beam_args above)
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    from pipeline import pipeline as pipeline_lib
    from pipeline.inputs import PipelineInputs
    from pipeline.runners import ITEM_SIDE_IN_PROCESS_MAX_ITEMS
    config = RunConfig(runner="direct_multiprocess", output_dir=str(tmp_path))

    def modes(num_items):
        inputs = PipelineInputs(str(tmp_path), str(tmp_path), ("title",), num_items)
        components = pipeline_lib.create_pipeline(config, inputs, items_fingerprint="x").components
        return {c.id: PipelineOptions(c.executor_spec.beam_pipeline_args).view_as(
            DirectOptions).direct_running_mode for c in components
            if hasattr(c.executor_spec, "beam_pipeline_args")}

    small = modes(ITEM_SIDE_IN_PROCESS_MAX_ITEMS)
    assert {c for c, mode in small.items() if mode == "in_memory"} == {
        "ItemExampleGen", "ContentEmbedder", "SemanticIdGen"}
    assert small["InteractionExampleGen"] == "multi_processing"



def test_content_embedder_plan_sets_workers_threads_and_spinning():
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    from pipeline.runners import ITEM_SIDE_IN_PROCESS_MAX_ITEMS, content_embedder_plan
    big, small = ITEM_SIDE_IN_PROCESS_MAX_ITEMS + 1, ITEM_SIDE_IN_PROCESS_MAX_ITEMS

    def direct_options(config, plan):
        options = PipelineOptions(beam_pipeline_args(config) + plan.beam_args)
        return (options.view_as(DirectOptions).direct_running_mode,
                options.view_as(DirectOptions).direct_num_workers)

    # (beam args, workers, calls at once, onnxruntime threads per call, spinning)
    # a small catalog with neither option: the encoder's defaults, in one process (as before)
    assert content_embedder_plan(RunConfig(), 1682, cpus=2) == ([], 1, 1, None, None)
    multi = RunConfig(runner="direct_multiprocess")
    plan = content_embedder_plan(multi, small, cpus=2)
    assert plan[1:] == (1, 1, None, None)
    assert direct_options(multi, plan) == ("in_memory", 1)
    # a large catalog: one process in memory, one single-threaded call per core, no spinning
    for config in (RunConfig(), multi):
        plan = content_embedder_plan(config, big, cpus=2)
        assert plan[1:] == (1, 2, 1, False)
        assert direct_options(config, plan) == ("in_memory", 1)
    assert content_embedder_plan(multi, None, cpus=8).parallel_calls == 8
    # the options: worker processes (direct_multiprocess) and threads as given
    opt = RunConfig(runner="direct_multiprocess", encoder_workers=2, encoder_threads=3)
    plan = content_embedder_plan(opt, small, cpus=2)
    assert plan[1:] == (2, 3, 1, False)
    assert direct_options(opt, plan) == ("multi_processing", 2)
    assert content_embedder_plan(RunConfig(runner="direct_multiprocess", encoder_workers=2),
                                 big, cpus=8).parallel_calls == 4
    assert content_embedder_plan(RunConfig(encoder_threads=2), small, cpus=8)[1:] == (
        1, 2, 1, False)
    # Dataflow (not measured here): harness threads per SDK process, calls per harness thread
    flow = RunConfig(runner="dataflow", encoder_workers=3, encoder_threads=2,
                     beam_args=list(DATAFLOW_OK))
    assert content_embedder_plan(flow, None) == (
        ["--number_of_worker_harness_threads=3"], None, 2, 1, False)
    assert content_embedder_plan(RunConfig(runner="dataflow", beam_args=list(DATAFLOW_OK)),
                                 None) == ([], None, 1, None, None)


def test_create_pipeline_passes_the_encoder_plan_to_content_embedder(tmp_path):
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    from components.content_embedder import core
    from pipeline import pipeline as pipeline_lib
    from pipeline.inputs import PipelineInputs

    def embedder(config, num_items):
        inputs = PipelineInputs(str(tmp_path), str(tmp_path), ("title",), num_items)
        (c,) = [c for c in pipeline_lib.create_pipeline(
            config, inputs, items_fingerprint="x").components if c.id == "ContentEmbedder"]
        options = PipelineOptions(c.executor_spec.beam_pipeline_args).view_as(DirectOptions)
        return ((options.direct_running_mode, options.direct_num_workers),
                tuple(c.exec_properties.get(k) for k in (
                    core.PARALLEL_CALLS_KEY, core.NUM_THREADS_KEY, core.ALLOW_SPINNING_KEY)))

    config = RunConfig(runner="direct_multiprocess", output_dir=str(tmp_path), encoder_workers=2,
                       encoder_threads=1)
    assert embedder(config, 50_000) == (("multi_processing", 2), (1, 1, 0))
    config = RunConfig(runner="direct_multiprocess", output_dir=str(tmp_path), encoder_threads=2)
    assert embedder(config, 50_000) == (("in_memory", 1), (2, 1, 0))
    assert embedder(RunConfig(output_dir=str(tmp_path)), 1682) == (
        ("in_memory", 1), (1, None, None))


def test_portable_passes_the_job_endpoint_and_environment_through():
    extra = ["--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"]
    assert _args("portable", extra) == ["--runner=PortableRunner"] + extra
    assert _args("portable", ["--job_endpoint", "localhost:8099"])[0] == "--runner=PortableRunner"


def test_portable_without_a_job_endpoint_is_refused():
    with pytest.raises(ValueError, match="--job_endpoint"):
        _args("portable", ["--environment_type=LOOPBACK"])


def test_dataflow_adds_the_repository_setup_file():
    args = _args("dataflow", DATAFLOW_OK)
    setup_py = os.path.join(REPO_ROOT, "setup.py")
    assert args == ["--runner=DataflowRunner", f"--setup_file={setup_py}", *DATAFLOW_OK]
    assert os.path.isfile(os.path.join(REPO_ROOT, "setup.py"))


@pytest.mark.parametrize("missing", ["--project", "--region", "--temp_location"])
def test_dataflow_names_each_missing_flag(missing):
    given = [a for a in DATAFLOW_OK if not a.startswith(missing + "=")]
    with pytest.raises(ValueError, match=f"runner=dataflow needs {missing}\\b"):
        _args("dataflow", given)


def test_dataflow_names_all_missing_flags_at_once():
    with pytest.raises(ValueError) as e:
        _args("dataflow", [])
    for flag in ("--project", "--region", "--temp_location or --gcp_temp_location"):
        assert flag in str(e.value)


def test_dataflow_accepts_space_separated_values_and_gcp_temp_location():
    args = _args("dataflow", ["--project", "p", "--region", "r", "--gcp_temp_location=gs://b/t"])
    assert args[0] == "--runner=DataflowRunner" and args[1].startswith("--setup_file=")
    with pytest.raises(ValueError, match="--project"):  # a flag with no value is missing
        _args("dataflow", ["--project", "--region=r", "--temp_location=gs://b/t"])


def test_dataflow_worker_image_holding_the_package_needs_no_setup_file():
    image = "--sdk_container_image=europe-docker.pkg.dev/p/semids/semids:1"
    assert _args("dataflow", DATAFLOW_OK + [image]) == ["--runner=DataflowRunner", *DATAFLOW_OK,
                                                        image]


def test_dataflow_from_an_installed_package_needs_a_worker_image_or_setup_file(monkeypatch):
    from pipeline import runners
    monkeypatch.setattr(runners, "setup_file", lambda: "/site-packages/setup.py")
    with pytest.raises(ValueError, match="does not exist.*--sdk_container_image"):
        _args("dataflow", DATAFLOW_OK)


def test_dataflow_keeps_a_user_setup_file():
    args = _args("dataflow", DATAFLOW_OK + ["--setup_file=/elsewhere/setup.py"])
    assert [a for a in args if a.startswith("--setup_file")] == ["--setup_file=/elsewhere/setup.py"]


def test_has_flag():
    assert has_flag(["--a=1"], "--a") and has_flag(["--a", "1"], "--a")
    assert not has_flag(["--a="], "--a") and not has_flag(["--a"], "--a")
    assert not has_flag(["--ab=1"], "--a") and not has_flag(["--a", "--b=1"], "--a")


def test_cli_beam_arg_syntax_of_the_readme(capsys):
    """`--beam_arg=--flag=value`, repeated, is how docs/deploy.md passes Beam flags."""
    from pipeline import cli
    assert cli.main(["show-config", "--runner", "dataflow", "--beam_arg=--project=p",
                     "--beam_arg=--region=r", "--beam_arg=--temp_location=gs://b/tmp"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["runner"] == "dataflow"
    assert shown["beam_args"] == ["--project=p", "--region=r", "--temp_location=gs://b/tmp"]


# --- the tiny pipeline under each runner ---------------------------------------------------------

# Components that run a Beam pipeline, and a top-level transform label only that pipeline has
# (ExampleGen: two instances, items and interactions).
BEAM_COMPONENTS = {
    "ItemExampleGen": "InputToRecord", "InteractionExampleGen": "InputToRecord",
    "ContentEmbedder": "ParseItem", "InteractionFeatures": "UserHistories",
    "StatisticsGen": "GenerateStatistics[train]", "SemanticIdGen": "WriteCatalogAndReport",
    "SpmTrainer": "TrainAndWrite", "Transform": "WriteTransformFn",
    "Evaluator": "ExtractEvaluateAndWriteResults",
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from data import synthetic
    data_dir = str(tmp_path_factory.mktemp("runners-data"))
    synthetic.generate_synthetic(data_dir, num_users=60, num_items=50, num_interactions=800,
                                 seed=0)
    return data_dir


def _tiny_config(tmp_path, data_dir, **overrides) -> RunConfig:
    from conftest import e2e_config
    config = e2e_config(str(tmp_path), data_dir)
    return dataclasses.replace(config, max_epochs=1, rqvae_epochs=2, table_budgets=(64,),
                               item_table_size=64, **overrides)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(request, name, cmd, port, log_path, env=None, timeout=120):
    """Starts `cmd` in its own process group, killed (the group) when the test ends; returns once
    `port` accepts connections."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=REPO_ROOT)

    def stop():
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the service and any worker processes it started
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        log.close()
    request.addfinalizer(stop)

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("localhost", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.5)
    log.flush()
    with open(log_path) as f:
        tail = f.read()[-3000:]
    pytest.fail(f"{name} did not come up on port {port} (exit code {proc.poll()}):\n{tail}")


def _job_service(request, tmp_path) -> str:
    port = _free_port()
    _start(request, "Beam job service",
           [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
            f"--port={port}", f"--staging_dir={tmp_path / 'staging'}"],
           port, str(tmp_path / "job_service.log"))
    return f"localhost:{port}"


def _jobs(endpoint: str):
    """[(state, top-level transform labels)] of every pipeline the job service ran."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        jobs = []
        for info in stub.GetJobs(beam_job_api_pb2.GetJobsRequest()).job_info:
            pipeline = stub.GetPipeline(
                beam_job_api_pb2.GetJobPipelineRequest(job_id=info.job_id)).pipeline
            transforms = pipeline.components.transforms
            labels = {transforms[t].unique_name for root in pipeline.root_transform_ids
                      for t in transforms[root].subtransforms}
            jobs.append((beam_job_api_pb2.JobState.Enum.Name(info.state), labels))
    return jobs


def _check_jobs(endpoint: str):
    jobs = _jobs(endpoint)
    assert jobs and all(state == "DONE" for state, _ in jobs), jobs
    for component, label in BEAM_COMPONENTS.items():
        want = sum(1 for c, lab in BEAM_COMPONENTS.items() if lab == label)
        ran = sum(1 for _, labels in jobs if label in labels)
        assert ran == want, (f"{component}: {ran} job(s) with {label!r} on the job service, "
                             f"expected {want}; jobs: {[sorted(l)[:6] for _, l in jobs]}")
    assert len(jobs) == len(BEAM_COMPONENTS), len(jobs)


def _check_run(config: RunConfig, metrics: dict):
    """The run pushed a model, reported metrics, and every Beam component wrote its outputs."""
    import tensorflow as tf
    from components.artifacts import ItemCatalog, SpmModels
    from pipeline import mlmd

    assert metrics["pushed_model_dir"], metrics
    assert tf.io.gfile.exists(os.path.join(metrics["pushed_model_dir"], "saved_model.pb"))
    assert 0.0 <= metrics["auc_overall"] <= 1.0 and metrics["eval_example_count"] > 0
    assert metrics["num_train"] > 0 and metrics["num_eval"] > 0

    outputs = mlmd.latest_run_outputs(config)
    missing = sorted(set(BEAM_COMPONENTS) - set(outputs))
    assert not missing, f"no outputs recorded for {missing}"

    def uri(component, key):
        return outputs[component][key][0].uri

    def has_files(pattern):
        return bool(tf.io.gfile.glob(pattern))

    for gen in ("ItemExampleGen", "InteractionExampleGen"):
        assert has_files(os.path.join(uri(gen, "examples"), "Split-all", "*"))
    assert has_files(os.path.join(uri("ContentEmbedder", "embeddings"), "Split-all", "*"))
    for split in ("train", "validation", "eval"):
        assert has_files(os.path.join(uri("InteractionFeatures", "examples"), f"Split-{split}",
                                      "*"))
        assert has_files(os.path.join(uri("Transform", "transformed_examples"), f"Split-{split}",
                                      "*"))
    assert has_files(os.path.join(uri("StatisticsGen", "statistics"), "Split-train", "*"))
    catalog = uri("SemanticIdGen", "catalog")
    with tf.io.gfile.GFile(os.path.join(catalog, ItemCatalog.CATALOG_TSV)) as f:
        assert len([line for line in f if line.strip()]) == 50  # every item has a SID
    assert tf.io.gfile.exists(SpmModels.model_path(uri("SpmTrainer", "spm_models"), 64))
    assert has_files(os.path.join(uri("Transform", "transform_graph"), "transform_fn", "*"))
    assert has_files(os.path.join(uri("Evaluator", "evaluation"), "*"))


@pytest.mark.e2e
@pytest.mark.slow
def test_portable_runner_with_job_service_runs_the_pipeline(tiny_data, tmp_path, request):
    """PortableRunner -> Beam's job service (a subprocess) -> SDK worker in this process."""
    from pipeline.run import run_pipeline
    endpoint = _job_service(request, tmp_path)
    config = _tiny_config(tmp_path, tiny_data, runner="portable",
                          beam_args=[f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"])
    metrics = run_pipeline(config, quiet=True)
    _check_run(config, metrics)
    _check_jobs(endpoint)


def worker_pool_env() -> dict:
    """The environment Beam's worker pool needs to start semids SDK workers (docs/deploy.md, "Runners").

    worker_pool_main starts each worker as `python -c "...SdkHarness(...).run()"`: `python` from
    PATH, so the venv's bin goes first. Such workers install no staged artifacts, so they see
    neither a --setup_file/--extra_package nor TFX's user-module wheel of Transform
    (tfx_user_code_Transform: the .py files of models/ranking as top-level modules, e.g.
    `preprocessing`): the repository and models/ranking go on PYTHONPATH instead.
    """
    return {**os.environ,
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([REPO_ROOT,
                                          os.path.join(REPO_ROOT, "models", "ranking")]),
            "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.e2e
@pytest.mark.slow
def test_portable_runner_with_external_worker_pool_runs_the_pipeline(tiny_data, tmp_path,
                                                                       request):
    """PortableRunner -> job service -> SDK workers in processes of Beam's worker pool."""
    from pipeline.run import run_pipeline
    endpoint = _job_service(request, tmp_path)
    pool_port = _free_port()
    _start(request, "Beam worker pool",
           [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
            f"--service_port={pool_port}"],
           pool_port, str(tmp_path / "worker_pool.log"), env=worker_pool_env())
    config = _tiny_config(tmp_path, tiny_data, runner="portable", beam_args=[
        f"--job_endpoint={endpoint}", "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{pool_port}"])
    metrics = run_pipeline(config, quiet=True)
    _check_run(config, metrics)
    _check_jobs(endpoint)
    with open(tmp_path / "worker_pool.log") as f:
        assert "Starting worker with command" in f.read()  # workers ran in the pool's processes


@pytest.mark.e2e
@pytest.mark.slow
def test_direct_multiprocess_runs_the_pipeline(tiny_data, tmp_path):
    from pipeline.run import run_pipeline
    config = _tiny_config(tmp_path, tiny_data, runner="direct_multiprocess", direct_num_workers=2)
    assert "--direct_running_mode=multi_processing" in beam_pipeline_args(config)
    metrics = run_pipeline(config, quiet=True)
    _check_run(config, metrics)
