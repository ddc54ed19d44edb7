# semids: `make run` runs the full pipeline on MovieLens-100K (ARGS="--dataset ml1m": MovieLens-1M);
# `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning

.PHONY: setup run experiment tune test test-all lock clean compile-vertex

setup:
	@bash scripts/setup_env.sh

run: setup
	$(VENV)/bin/semids run $(ARGS)

# Representations x table budgets x history x seeds on MovieLens-100K (pipeline/experiment/;
# ARGS="--dataset ml1m": MovieLens-1M): resumable (finished runs are skipped), writes
# results/experiment/<dataset>/{results.csv,table.md,...}.
experiment: setup
	$(VENV)/bin/semids experiment $(ARGS)

# Per-representation ranking settings chosen on the validation split (pipeline/experiment/
# tuning.py): writes models/ranking/tuned_hparams.json (commit it). Not part of `make run`.
tune: setup
	$(VENV)/bin/semids tune $(ARGS)

test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Re-resolve the pins (needs the network to PyPI); commit the lock it writes.
lock:
	.tools/uv/bin/uv pip compile requirements/requirements.in --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 -o requirements/requirements.lock

clean:
	rm -rf outputs results

# The Vertex AI Pipelines job JSON (pipeline/vertex.py; offline, nothing is uploaded). The project,
# bucket and image below are placeholders: override them with ARGS (later flags win), e.g.
#   make compile-vertex ARGS="--project my-proj --pipeline_root gs://my-bucket/semids/root
#     --data_dir gs://my-bucket/semids/data --encoder_dir gs://my-bucket/semids/encoders/all-MiniLM-L6-v2-int8
#     --image us-central1-docker.pkg.dev/my-proj/semids/semids:latest"   (on one line)
compile-vertex: setup
	$(VENV)/bin/semids compile-vertex --output outputs/vertex/semids_pipeline.json \
	  --project my-gcp-project --region us-central1 \
	  --pipeline_root gs://my-bucket/semids/pipeline_root \
	  --data_dir gs://my-bucket/semids/data \
	  --encoder_dir gs://my-bucket/semids/encoders/all-MiniLM-L6-v2-int8 \
	  --image us-central1-docker.pkg.dev/my-gcp-project/semids/semids:latest $(ARGS)
