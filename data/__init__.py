"""Datasets in the bring-your-own-data format (data/format.py): MovieLens-100K, synthetic, CSV."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pipeline import features

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.config import RunConfig


def _exists(path: str) -> bool:
    if "://" in path:  # gs:// and friends: ask TF's file systems
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        return tf.io.gfile.exists(path)
    return os.path.isfile(path)


def prepare_dataset(config: "RunConfig") -> str:
    """The folder holding items.csv and interactions.csv for this run (prepared if needed).

    ml100k: converted from recbole into config.prepared_data_dir (idempotent);
    synthetic: generated there with config's sizes and seed (idempotent for the same params);
    csv: config.data_dir, which must hold both files.
    """
    if config.dataset == "ml100k":
        from data.movielens import prepare_movielens  # pylint: disable=import-outside-toplevel
        return prepare_movielens(config.prepared_data_dir)["dir"]
    if config.dataset == "synthetic":
        from data.synthetic import generate_synthetic  # pylint: disable=import-outside-toplevel
        return generate_synthetic(config.prepared_data_dir,
                                  num_users=config.synthetic_num_users,
                                  num_items=config.synthetic_num_items,
                                  num_interactions=config.synthetic_num_interactions,
                                  seed=config.seed)["dir"]
    if config.dataset == "csv":
        d = config.data_dir if "://" in config.data_dir else config.prepared_data_dir
        missing = [n for n in (features.ITEMS_FILE, features.INTERACTIONS_FILE)
                   if not _exists(os.path.join(d, n))]
        if missing:
            raise FileNotFoundError(
                f"dataset=csv: data_dir {d} must hold {features.ITEMS_FILE} and "
                f"{features.INTERACTIONS_FILE}; missing: {', '.join(missing)} "
                "(the format is described in data/format.py)")
        return d
    raise ValueError(f"unknown dataset {config.dataset!r}")
