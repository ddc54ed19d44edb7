"""What a run needs before the pipeline starts: the two CSV files and the encoder's folder.

Converting a public dataset into the CSVs and assembling the encoder folder from installed
packages are the only steps outside the pipeline; both are idempotent (markers), so the TFX cache
stays valid across runs.

Every read here goes through tf.io.gfile, so data_dir and encoder_dir may be gs:// folders
(runner=dataflow requires it: RunConfig.validate_dataflow_paths).
"""
import os
from typing import NamedTuple, Optional, Tuple

from pipeline import features
from pipeline.config import DEFAULT_ENCODER_NAME, RunConfig  # noqa: F401 (re-exported)


class PipelineInputs(NamedTuple):
    data_dir: str  # holds items.csv and interactions.csv
    encoder_dir: Optional[str]  # model.onnx + tokenizer.json; None: items bring embeddings
    text_fields: Tuple[str, ...]  # items.csv columns joined into the embedded text


def items_header(data_dir: str):
    """items.csv's header, read through tf.io.gfile (a local or gs:// data_dir)."""
    from data import format as data_format
    path = os.path.join(data_dir, features.ITEMS_FILE)
    return data_format.parse_items_header(
        data_format.read_header(path, opener=data_format.gfile_open), features.ITEMS_FILE)


def prepare_inputs(config: RunConfig) -> PipelineInputs:
    import data
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from components.content_embedder import core as embedder_core

    # runner=dataflow: artifact_root and data_dir on GCS, checked before anything is read.
    config.validate_dataflow_paths(needs_encoder=False)
    data_dir = data.prepare_dataset(config)
    header = items_header(data_dir)
    text_fields = tuple(config.item_text_fields or header.text_field_names)
    unknown = sorted(set(text_fields) - set(header.text_field_names))
    if unknown:
        raise ValueError(f"item_text_fields {unknown} are not columns of "
                         f"{os.path.join(data_dir, features.ITEMS_FILE)} "
                         f"(text columns: {list(header.text_field_names)})")
    if header.embedding is not None:
        return PipelineInputs(data_dir, None, text_fields)  # items bring embeddings: no encoder
    config.validate_dataflow_paths(needs_encoder=True)  # runner=dataflow: encoder_dir on GCS
    if config.encoder_dir:
        encoder_dir = embedder_core.validate_encoder_dir(config.encoder_dir,
                                                         exists=tf.io.gfile.exists)
    else:
        encoder_dir = embedder_core.prepare_encoder_dir(
            os.path.join(config.output_dir, "encoders", DEFAULT_ENCODER_NAME))
    return PipelineInputs(data_dir, encoder_dir, text_fields)
