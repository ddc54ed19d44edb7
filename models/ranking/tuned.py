"""The tuned ranking settings: models/ranking/tuned_hparams.json, written by `semids tune`
(pipeline/tuning.py) and committed.

Layout: {"<dataset>": {"<representation>": {<RankingConfig TUNABLE_FIELDS>: value}}}, plus a
"_meta" entry per dataset saying how they were chosen. A dataset or representation without an
entry trains with RankingConfig's defaults.
"""
import json
import os
from typing import Any, Dict, Optional

from models.ranking.config import TUNABLE_FIELDS

TUNED_HPARAMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "tuned_hparams.json")
META_KEY = "_meta"


def load_all(path: str = TUNED_HPARAMS_FILE) -> Dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def tuned_hparams(dataset: str, representation: str,
                  path: Optional[str] = None) -> Dict[str, Any]:
    """The tuned settings of one dataset and representation ({} when none were tuned)."""
    entry = load_all(path or TUNED_HPARAMS_FILE).get(dataset, {}).get(representation, {})
    unknown = sorted(set(entry) - set(TUNABLE_FIELDS))
    if unknown:
        raise ValueError(f"{path or TUNED_HPARAMS_FILE}: {dataset}/{representation} has unknown "
                         f"setting(s) {unknown}; tunable: {list(TUNABLE_FIELDS)}")
    return dict(entry)
