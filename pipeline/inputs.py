"""What a run needs before the pipeline starts: the two CSV files and the encoder's folder.

Converting a public dataset into the CSVs and assembling the encoder folder from installed
packages are the only steps outside the pipeline; both are idempotent (markers), so the TFX cache
stays valid across runs.
"""
import os
from typing import NamedTuple, Optional, Tuple

from pipeline import features
from pipeline.config import RunConfig

DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2-int8"


class PipelineInputs(NamedTuple):
    data_dir: str  # holds items.csv and interactions.csv
    encoder_dir: Optional[str]  # model.onnx + tokenizer.json; None: items bring embeddings
    text_fields: Tuple[str, ...]  # items.csv columns joined into the embedded text


def items_header(data_dir: str):
    from data import format as data_format
    path = os.path.join(data_dir, features.ITEMS_FILE)
    return data_format.parse_items_header(data_format.read_header(path), features.ITEMS_FILE)


def prepare_inputs(config: RunConfig) -> PipelineInputs:
    import data
    from components.content_embedder import core as embedder_core

    data_dir = data.prepare_dataset(config)
    header = items_header(data_dir)
    text_fields = tuple(config.item_text_fields or header.text_field_names)
    unknown = sorted(set(text_fields) - set(header.text_field_names))
    if unknown:
        raise ValueError(f"item_text_fields {unknown} are not columns of "
                         f"{os.path.join(data_dir, features.ITEMS_FILE)} "
                         f"(text columns: {list(header.text_field_names)})")
    if header.embedding is not None:
        encoder_dir = None  # items.csv carries the embeddings: no encoder runs
    elif config.encoder_dir:
        encoder_dir = embedder_core.validate_encoder_dir(config.encoder_dir)
    else:
        encoder_dir = embedder_core.prepare_encoder_dir(
            os.path.join(config.output_dir, "encoders", DEFAULT_ENCODER_NAME))
    return PipelineInputs(data_dir, encoder_dir, text_fields)
