"""Vertex AI Pipelines: the full pipeline compiles offline into a job JSON (pipeline/vertex.py),
and the local pipeline keeps its own settings. No network: nothing under gs:// is read."""
import json
import filecmp
import os
import re

import pytest

from components import artifacts
from pipeline import cli, vertex
from pipeline import pipeline as pipeline_lib
from pipeline.config import REPO_ROOT, RunConfig
from schemas import INTERACTIONS_SCHEMA
from pipeline.inputs import PipelineInputs
from pipeline.runners import beam_pipeline_args

PROJECT = "test-project"
REGION = "europe-west4"
BUCKET = "gs://test-bucket/semids"
PIPELINE_ROOT = f"{BUCKET}/pipeline_root"
DATA_DIR = f"{BUCKET}/data"
ENCODER_DIR = f"{BUCKET}/encoders/all-MiniLM-L6-v2-int8"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/semids/semids:test"

COMPONENTS = ("ItemExampleGen", "ContentEncoderImporter", "ContentEmbedder", "RqVaeTrainer",
              "SemanticIdGen", "InteractionExampleGen", "InteractionFeatures", "StatisticsGen",
              "ImportSchemaGen", "StrictExampleValidator", "SpmTrainer", "Transform", "Trainer",
              "latest_blessed_model_resolver", "Evaluator", "Pusher")
BEAM_COMPONENTS = ("ItemExampleGen", "ContentEmbedder", "SemanticIdGen", "InteractionExampleGen",
                   "InteractionFeatures", "StatisticsGen", "SpmTrainer", "Transform", "Evaluator")
DATAFLOW_ARGS = ("--runner=DataflowRunner", f"--project={PROJECT}", f"--region={REGION}",
                 f"--temp_location={PIPELINE_ROOT}/tmp", f"--setup_file={vertex.IMAGE_SETUP_FILE}",
                 f"--sdk_container_image={IMAGE}")
# The only absolute paths allowed in the job: files inside the image (the repository copy at
# /pipeline, the Dockerfile's WORKDIR), which no gs:// path can replace: Dataflow's --setup_file
# is read where the Vertex step launches the job, and ImportSchemaGen reads the curated schema.
IMAGE_PATHS = {vertex.IMAGE_SETUP_FILE, vertex.IMAGE_SCHEMA_FILE}
LOCAL_PATH = re.compile(r"(?<![\w.:/-])/(?:work|tmp|home|root|pipeline)(?:/|\b)")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The job JSON `semids compile-vertex` writes with the default RunConfig."""
    output = str(tmp_path_factory.mktemp("vertex") / "semids_pipeline.json")
    rc = cli.main(["compile-vertex", "--output", output, "--project", PROJECT, "--region", REGION,
                   "--pipeline_root", PIPELINE_ROOT, "--data_dir", DATA_DIR,
                   "--encoder_dir", ENCODER_DIR, "--image", IMAGE])
    assert rc == 0
    with open(output) as f:
        return json.load(f)


def _tasks(job):
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def _executor(job, task_id):
    tasks = _tasks(job)
    components = job["pipelineSpec"]["components"]
    label = components[tasks[task_id]["componentRef"]["name"]]["executorLabel"]
    return job["pipelineSpec"]["deploymentSpec"]["executors"][label]


def _parameter(job, task_id, name):
    return _tasks(job)[task_id]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]


def _strings(x):
    """Every string in the job (exec properties that are JSON are searched as text)."""
    if isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)
    elif isinstance(x, str):
        yield x


def test_every_component_is_in_the_job(job):
    tasks = set(_tasks(job))
    for component in COMPONENTS:
        # The Resolver compiles into one task per channel (model, model blessing).
        assert any(t == component or t.startswith(component + "-") for t in tasks), component
    assert len([t for t in tasks if t.startswith("latest_blessed_model_resolver-")]) == 2
    assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT


def test_beam_components_are_the_expected_ones():
    from tfx.dsl.components.base import executor_spec
    config = RunConfig(data_dir=DATA_DIR, encoder_dir=ENCODER_DIR)
    with vertex.vertex_artifact_type_names():
        pipeline = vertex.create_vertex_pipeline(config, PROJECT, REGION, PIPELINE_ROOT)
    beam = {c.id for c in pipeline.components
            if isinstance(getattr(c, "executor_spec", None), executor_spec.BeamExecutorSpec)}
    assert beam == set(BEAM_COMPONENTS)
    assert pipeline.metadata_connection_config is None


def test_every_beam_component_runs_on_dataflow(job):
    for component in BEAM_COMPONENTS:
        container = _executor(job, component)["container"]
        for arg in DATAFLOW_ARGS:
            assert arg in container["args"], (component, arg)
        if component.endswith("ExampleGen"):  # the file-based driver launches Beam too
            driver_args = container["lifecycle"]["preCacheCheck"]["args"]
            assert set(DATAFLOW_ARGS) <= set(driver_args), component


def test_every_step_runs_in_the_image(job):
    from tfx.utils import import_utils
    containers = [e["container"] for e in job["pipelineSpec"]["deploymentSpec"]["executors"].values()
                  if "container" in e]
    assert len(containers) == len(COMPONENTS) - 2  # all but the Importer and the Resolver
    for container in containers:
        assert container["image"] == IMAGE
        assert container["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
        args = container["args"]  # the executor the entrypoint imports in the image
        import_utils.import_class_by_path(args[args.index("--executor_class_path") + 1])


def _names_a_local_path(s: str) -> bool:
    return REPO_ROOT in s or bool(LOCAL_PATH.search(s))


def test_no_local_paths_in_the_job(job):
    # the check itself: absolute paths are caught, gs:// ones (even .../tmp) are not
    assert _names_a_local_path("--setup_file=/work/main/setup.py")
    assert _names_a_local_path('{"module_file": "/tmp/pytest-1/x.py"}')
    assert _names_a_local_path(os.path.join(REPO_ROOT, "schemas", "interactions.pbtxt"))
    assert not _names_a_local_path(f"--temp_location={PIPELINE_ROOT}/tmp")
    assert not _names_a_local_path(f"{BUCKET}/pipeline_root/serving/semids")
    local = [s for s in _strings(job) if _names_a_local_path(s)]
    in_image = {p for p in IMAGE_PATHS for s in local if p in s}
    assert in_image == IMAGE_PATHS  # both are there ...
    leftover = [s for s in local if not any(p in s for p in IMAGE_PATHS)]
    assert leftover == []  # ... and nothing else names a local file
    assert os.path.exists(os.path.join(REPO_ROOT, "setup.py"))  # what the image copies
    assert os.path.exists(INTERACTIONS_SCHEMA)
    assert vertex.IMAGE_SCHEMA_FILE == "/pipeline/schemas/interactions.pbtxt"


def test_inputs_and_outputs_are_gcs_paths(job):
    importer = _executor(job, "ContentEncoderImporter")["importer"]
    assert importer["artifactUri"]["constantValue"]["stringValue"] == ENCODER_DIR
    for gen in ("ItemExampleGen", "InteractionExampleGen"):
        assert _parameter(job, gen, "input_base")["stringValue"] == DATA_DIR
    push = json.loads(_parameter(job, "Pusher", "push_destination")["stringValue"])
    assert push["filesystem"]["base_directory"] == f"{PIPELINE_ROOT}/serving/semids"
    embedder = json.loads(_parameter(job, "ContentEmbedder", "text_fields")["stringValue"])
    assert embedder == list(vertex.DEFAULT_TEXT_FIELDS)


def test_user_code_comes_from_the_installed_package(job):
    from tfx.utils import import_utils
    expected = {"RqVaeTrainer": ("run_fn", pipeline_lib.RQVAE_TRAINER_RUN_FN),
                "Trainer": ("run_fn", pipeline_lib.TRAINER_RUN_FN),
                "Transform": ("preprocessing_fn", pipeline_lib.PREPROCESSING_FN)}
    for component, (key, path) in expected.items():
        params = _tasks(job)[component]["inputs"]["parameters"]
        assert "module_file" not in params and "module_path" not in params, component
        assert _parameter(job, component, key)["stringValue"] == path
        module, fn = path.rsplit(".", 1)
        assert callable(import_utils.import_func_from_module(module, fn))


def test_custom_artifact_types_are_importable_titles(job):
    from tfx.utils import import_utils
    titles = set()
    for s in _strings(job):
        titles.update(re.findall(r"title: (components\.\w+)", s))
    assert titles == {f"components.{n}" for n in ("ContentEncoder", "ItemCatalog", "SidReport",
                                                  "SpmModels")}
    for title in titles:  # what TFX's entrypoint does with a custom type's title on Vertex
        assert import_utils.import_class_by_path(title) is getattr(artifacts, title.split(".")[1])
    # the local pipeline's MLMD type names are left as they were
    assert artifacts.ContentEncoder.TYPE_NAME == "ContentEncoder"
    assert artifacts.SpmModels.TYPE_NAME == "SpmModels"


def test_compile_refuses_local_paths_and_a_missing_encoder(tmp_path):
    out = str(tmp_path / "job.json")
    with pytest.raises(ValueError, match="data_dir must be a gs://"):
        vertex.compile_vertex_job(RunConfig(data_dir=str(tmp_path), encoder_dir=ENCODER_DIR), out,
                                  IMAGE, PROJECT, REGION, PIPELINE_ROOT)
    with pytest.raises(ValueError, match="--encoder_dir is required"):
        vertex.compile_vertex_job(RunConfig(data_dir=DATA_DIR), out, IMAGE, PROJECT, REGION,
                                  PIPELINE_ROOT)
    with pytest.raises(ValueError, match="pipeline_root must be a gs://"):
        vertex.compile_vertex_job(RunConfig(data_dir=DATA_DIR, encoder_dir=ENCODER_DIR), out,
                                  IMAGE, PROJECT, REGION, str(tmp_path))
    assert not os.path.exists(out)
    # --encoder_dir none: items.csv brings its own embeddings, no importer.
    config = RunConfig(data_dir=DATA_DIR, encoder_dir="none")
    with vertex.vertex_artifact_type_names():
        pipeline = vertex.create_vertex_pipeline(config, PROJECT, REGION, PIPELINE_ROOT,
                                                 setup_file=None, worker_image=None)
    ids = {c.id for c in pipeline.components}
    assert "ContentEncoderImporter" not in ids and "ContentEmbedder" in ids
    assert pipeline.beam_pipeline_args == list(DATAFLOW_ARGS[:4])


def test_local_pipeline_is_unchanged(tmp_path):
    """create_pipeline's defaults: sqlite MLMD, module files, local paths, the config's runner."""
    config = RunConfig(output_dir=str(tmp_path / "outputs"), dataset="csv",
                       data_dir=str(tmp_path / "data"))
    inputs = PipelineInputs(str(tmp_path / "data"), str(tmp_path / "encoder"), ("title",))
    pipeline = pipeline_lib.create_pipeline(config, inputs)
    mlmd = pipeline.metadata_connection_config
    assert mlmd is not None and mlmd.sqlite.filename_uri == config.metadata_path
    assert pipeline.pipeline_info.pipeline_root == config.pipeline_root
    assert pipeline.beam_pipeline_args == beam_pipeline_args(config)
    by_id = {c.id: c for c in pipeline.components}
    assert set(by_id) == set(COMPONENTS)
    for component, module_file in (("RqVaeTrainer", pipeline_lib.RQVAE_TRAINER_MODULE),
                                   ("Trainer", pipeline_lib.TRAINER_MODULE),
                                   ("Transform", pipeline_lib.PREPROCESSING_MODULE)):
        props = by_id[component].exec_properties
        assert props["module_file"] == module_file, component
        assert not props.get("run_fn") and not props.get("preprocessing_fn"), component
    # the schema, staged under a path named by its content (ImportSchemaGen caches on the path)
    staged = by_id["ImportSchemaGen"].exec_properties["schema_file"]
    assert staged.startswith(config.output_dir) and filecmp.cmp(staged, INTERACTIONS_SCHEMA)
    push = by_id["Pusher"].exec_properties["push_destination"]
    assert config.serving_model_dir in str(push)
    assert by_id["ContentEncoderImporter"].exec_properties["artifact_uri"] == inputs.encoder_dir
    assert by_id["ItemExampleGen"].exec_properties["input_base"] == inputs.data_dir


def test_aiplatform_loads_the_job(job, tmp_path):
    """What docs/deploy.md's submit step builds (without submitting it: no network)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    pipeline_job = aiplatform.PipelineJob(
        display_name="semids", template_path=str(path), pipeline_root=PIPELINE_ROOT,
        enable_caching=True, project=PROJECT, location=REGION, credentials=AnonymousCredentials())
    resource = pipeline_job._gca_resource  # pylint: disable=protected-access
    assert resource.runtime_config.gcs_output_directory == PIPELINE_ROOT
    assert set(resource.pipeline_spec["root"]["dag"]["tasks"]) == set(_tasks(job))
