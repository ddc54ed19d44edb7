"""Vertex AI Pipelines: the same `create_pipeline`, compiled offline into a pipeline job JSON by
TFX's KubeflowV2DagRunner, to submit with google.cloud.aiplatform.PipelineJob (docs/deploy.md:
"Vertex AI Pipelines").

    semids compile-vertex --output outputs/vertex/semids_pipeline.json \\
        --project P --region R --pipeline_root gs://B/semids/pipeline_root \\
        --data_dir gs://B/semids/data --encoder_dir gs://B/semids/encoders/all-MiniLM-L6-v2-int8 \\
        --image R-docker.pkg.dev/P/semids/semids:latest [--FIELD VALUE for any RunConfig field]

What differs from the local pipeline (create_pipeline's keyword options):
- no metadata connection config: Vertex keeps its own MLMD (the local sqlite would make dirs);
- the user functions as dotted paths (run_fn / preprocessing_fn) importable from the semids
  package installed in the image, instead of module files that TFX would package into wheels
  under the gs:// pipeline root while compiling;
- every path a gs:// one (data, encoder, pipeline root, Pusher's serving dir, Beam temp), and
  the two files that travel in the image by their path there (IMAGE_REPO_ROOT, the Dockerfile's
  WORKDIR): schemas/interactions.pbtxt for ImportSchemaGen and setup.py for Dataflow;
- the custom artifact types named `components.<Class>` (Vertex wants `<namespace>.<Title>`
  schema titles, and TFX's container entrypoint imports a custom type by its title; the local
  pipeline keeps its MLMD type names, see vertex_artifact_type_names);
- the Beam components run on Dataflow (DataflowRunner, project, region, temp_location,
  setup_file; workers start from the same image, --sdk_container_image), whatever the config's
  `runner`; the config's beam_args (--beam_arg) follow them;
- nothing is read at compile time: the inputs come from the config (not prepare_inputs, which
  touches local files), and items.csv's fingerprint is not read from GCS (stat_inputs=True reads
  it, given credentials).
"""
import argparse
import contextlib
import os
import posixpath
from typing import List, Optional

from components import ARTIFACT_TYPES
from pipeline.config import REPO_ROOT, RunConfig
from schemas import INTERACTIONS_SCHEMA
from pipeline.inputs import PipelineInputs

# Where the Dockerfile copies the repository (its WORKDIR): in-image paths in the job start here.
IMAGE_REPO_ROOT = "/pipeline"
IMAGE_SETUP_FILE = posixpath.join(IMAGE_REPO_ROOT, "setup.py")
IMAGE_SCHEMA_FILE = posixpath.join(
    IMAGE_REPO_ROOT, *os.path.relpath(INTERACTIONS_SCHEMA, REPO_ROOT).split(os.sep))
DEFAULT_TEXT_FIELDS = ("title", "year", "genres")
DEFAULT_OUTPUT = os.path.join("outputs", "vertex", "semids_pipeline.json")
# --encoder_dir none: items.csv carries its own `embedding` column, no encoder is imported;
# --dataflow_worker_image none: Dataflow's stock Beam worker image.
NONE = "none"
# --dataflow_worker_image same (default): the pipeline image.
SAME_IMAGE = "same"


@contextlib.contextmanager
def vertex_artifact_type_names():
    """The custom artifact types' TYPE_NAMEs as `components.<Class>` while the Vertex pipeline
    is built and compiled; restored afterwards. The job JSON carries them as schema titles, and
    on Vertex TFX imports each type by that path (components/__init__.py exports them); the
    executors in the image use the classes as they are, whatever their TYPE_NAME."""
    from components import artifacts
    classes = [getattr(artifacts, name) for name in ARTIFACT_TYPES]
    saved = [cls.TYPE_NAME for cls in classes]
    try:
        for cls in classes:
            cls.TYPE_NAME = f"components.{cls.__name__}"
        yield
    finally:
        for cls, name in zip(classes, saved):
            cls.TYPE_NAME = name


def _need_gcs(name: str, path: Optional[str]) -> str:
    if not path or not path.startswith("gs://"):
        raise ValueError(f"compile-vertex: {name} must be a gs:// path (Vertex and Dataflow cannot "
                         f"read this machine's files), got {path!r}")
    return path.rstrip("/")


def vertex_inputs(config: RunConfig) -> PipelineInputs:
    """The pipeline's inputs from the config alone (gs:// paths; nothing is read)."""
    data_dir = _need_gcs("--data_dir", config.data_dir)
    if not config.encoder_dir:
        raise ValueError("compile-vertex: --encoder_dir is required: the gs:// folder holding "
                         "model.onnx and tokenizer.json (or 'none' when items.csv carries an "
                         "`embedding` column)")
    encoder_dir = (None if config.encoder_dir.lower() == NONE
                   else _need_gcs("--encoder_dir", config.encoder_dir))
    text_fields = tuple(config.item_text_fields or DEFAULT_TEXT_FIELDS)
    return PipelineInputs(data_dir, encoder_dir, text_fields)


def dataflow_beam_args(config: RunConfig, project: str, region: str, temp_location: str,
                       setup_file: Optional[str] = IMAGE_SETUP_FILE,
                       worker_image: Optional[str] = None) -> List[str]:
    """Beam args of every Beam component on Vertex: Dataflow, then the config's beam_args.

    setup_file is the path inside the pipeline image (the Vertex step launches the Dataflow
    job from there); Beam builds an sdist of the semids package from it and workers install it.
    worker_image (--sdk_container_image) gives workers the pinned TF/TFX/onnxruntime stack; it is
    the pipeline image (its ENTRYPOINT is Beam's boot, inherited from the TFX image). With
    worker_image the package is already on workers, so setup_file may be dropped (None); without
    worker_image, Dataflow's stock Beam image has the package but not the stack, so add one
    yourself (e.g. --beam_arg=--requirements_file=..., slow: every worker installs TF).
    """
    args = ["--runner=DataflowRunner", f"--project={project}", f"--region={region}",
            f"--temp_location={_need_gcs('--temp_location', temp_location)}"]
    if setup_file:
        args.append(f"--setup_file={setup_file}")
    if worker_image:
        args.append(f"--sdk_container_image={worker_image}")
    return args + list(config.beam_args)


def create_vertex_pipeline(config: RunConfig, project: str, region: str, pipeline_root: str,
                           temp_location: Optional[str] = None,
                           serving_model_dir: Optional[str] = None,
                           setup_file: Optional[str] = IMAGE_SETUP_FILE,
                           worker_image: Optional[str] = None, stat_inputs: bool = False):
    """create_pipeline with the Vertex options (module docstring); returns the tfx Pipeline.
    Build and compile it inside vertex_artifact_type_names(), as compile_vertex_job does."""
    from pipeline import pipeline as pipeline_lib

    pipeline_root = _need_gcs("--pipeline_root", pipeline_root)
    temp_location = temp_location or f"{pipeline_root}/tmp"
    serving_model_dir = _need_gcs(
        "--serving_model_dir", serving_model_dir or f"{pipeline_root}/serving/{config.pipeline_name}")
    return pipeline_lib.create_pipeline(
        config, vertex_inputs(config),
        pipeline_root=pipeline_root,
        metadata_connection_config=None,
        module_paths=True,
        schema_file=IMAGE_SCHEMA_FILE,
        serving_model_dir=serving_model_dir,
        beam_args=dataflow_beam_args(config, project, region, temp_location,
                                     setup_file=setup_file, worker_image=worker_image),
        items_fingerprint=None if stat_inputs else "")


def compile_vertex_job(config: RunConfig, output_path: str, image: str, project: str,
                       region: str, pipeline_root: str, temp_location: Optional[str] = None,
                       serving_model_dir: Optional[str] = None,
                       setup_file: Optional[str] = IMAGE_SETUP_FILE,
                       worker_image: Optional[str] = SAME_IMAGE,
                       display_name: Optional[str] = None,
                       stat_inputs: bool = False) -> str:
    """Writes the Vertex AI pipeline job JSON to output_path and returns the path.

    image: the pipeline image (Dockerfile) every step runs in; worker_image: Dataflow's worker
    image, SAME_IMAGE (default) = `image`, None = Dataflow's stock one (see dataflow_beam_args).
    """
    from tfx import v1 as tfx

    if not image:
        raise ValueError("compile-vertex: --image is required (the pushed pipeline image)")
    output_path = os.path.abspath(output_path)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, display_name=display_name),
        output_dir=os.path.dirname(output_path), output_filename=os.path.basename(output_path))
    with vertex_artifact_type_names():
        pipeline = create_vertex_pipeline(
            config, project=project, region=region, pipeline_root=pipeline_root,
            temp_location=temp_location, serving_model_dir=serving_model_dir,
            setup_file=setup_file, stat_inputs=stat_inputs,
            worker_image=image if worker_image == SAME_IMAGE else worker_image)
        runner.run(pipeline, write_out=True)
    return output_path


# --- the `semids compile-vertex` subcommand (pipeline/cli.py) ------------------------------
def add_vertex_flags(parser: argparse.ArgumentParser) -> None:
    """Flags beyond the RunConfig's (--data_dir, --encoder_dir, --item_text_fields, ... are
    RunConfig fields; --beam_arg appends to the Dataflow args)."""
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help=f"the job JSON to write (default {DEFAULT_OUTPUT})")
    parser.add_argument("--project", required=True, help="GCP project of the Dataflow jobs")
    parser.add_argument("--region", required=True, help="region of the Dataflow jobs")
    parser.add_argument("--pipeline_root", required=True, help="gs:// root of the artifacts")
    parser.add_argument("--image", required=True,
                        help="the pipeline image every step runs in (built from the Dockerfile)")
    parser.add_argument("--temp_location", default=None,
                        help="Dataflow's gs:// temp/staging folder (default <pipeline_root>/tmp)")
    parser.add_argument("--serving_model_dir", default=None, help="Pusher's gs:// base directory "
                        "(default <pipeline_root>/serving/<pipeline_name>)")
    parser.add_argument("--dataflow_setup_file", default=IMAGE_SETUP_FILE,
                        help=f"setup.py inside the image (default {IMAGE_SETUP_FILE}; '' drops "
                        "--setup_file: workers then use the package already in the image)")
    parser.add_argument("--dataflow_worker_image", default=SAME_IMAGE,
                        help=f"--sdk_container_image of the Dataflow workers ('{SAME_IMAGE}', the "
                        f"default: --image; '{NONE}': Dataflow's stock Beam image, which lacks "
                        "the TF/TFX stack: add it with --beam_arg yourself)")
    parser.add_argument("--display_name", default=None, help="job display name (default: "
                        "the pipeline name)")
    parser.add_argument("--stat_inputs", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=False, metavar="BOOL", help="read items.csv's size/mtime from GCS "
                        "while compiling (needs credentials), so a new items.csv invalidates "
                        "InteractionExampleGen's cache (default false)")


def compile_from_args(args: argparse.Namespace, config: RunConfig) -> str:
    worker_image = None if args.dataflow_worker_image.lower() == NONE else args.dataflow_worker_image
    return compile_vertex_job(
        config, output_path=args.output, image=args.image, project=args.project,
        region=args.region, pipeline_root=args.pipeline_root, temp_location=args.temp_location,
        serving_model_dir=args.serving_model_dir, setup_file=args.dataflow_setup_file or None,
        worker_image=worker_image, display_name=args.display_name, stat_inputs=args.stat_inputs)

