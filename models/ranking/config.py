"""RankingConfig: the ranking model's options, typed. The Trainer reads it once from its
custom_config (RankingConfig.from_custom_config); pipeline/config.py's RunConfig takes its
defaults from here."""
import dataclasses
from typing import Any, Mapping, Optional, Tuple

from models.json_config import JsonConfig
from schemas import features

# custom_config keys that are not model options: the code fingerprint that keys the TFX cache.
NON_MODEL_KEYS = ("code_version",)
# The settings tuning chooses (per representation and dataset; models/ranking/tuned_hparams.json).
TUNABLE_FIELDS = ("learning_rate", "embedding_dim", "dropout", "l2", "cold_start_dropout",
                  "attention", "use_user_id", "user_rate_offset")


@dataclasses.dataclass(frozen=True)
class RankingConfig(JsonConfig):
    representation: str = features.RANDOM_HASH
    item_table_size: int = 10_000  # table budget B of the item feature
    user_hash_buckets: int = 10_000
    embedding_dim: int = 16
    hidden_units: Tuple[int, ...] = (128, 64)
    dropout: float = 0.5
    learning_rate: float = 1e-3
    l2: float = 0.0  # on the embedding rows a batch reads
    cold_start_dropout: float = 0.0  # see representations.RepresentationOptions
    attention: bool = True  # candidate-aware attention over the liked / disliked history
    item_prior: bool = True  # an additive item bias read through the representation
    use_user_id: bool = False  # a hashed user-id embedding (untrained for users new at eval)
    # With history: the user's smoothed positive rate enters the logit as a fixed log-odds offset
    # and the history counts feed nothing else, so the model learns what the items add to it.
    user_rate_offset: bool = False
    # Halve the learning rate when validation AUC stops improving for this many epochs.
    lr_patience: int = 1
    batch_size: int = 512
    max_epochs: int = 20
    early_stopping_patience: int = 2
    history_length: int = 50
    use_history: bool = True
    seed: int = 0
    # From the item side: codes per SID, RQ-VAE levels and codes per level (0 when the run has no
    # catalog); sid_length exceeds num_levels by the collision breaker's code when there is one.
    sid_length: int = 0
    num_levels: int = 0
    codebook_size: int = 0
    # Items in the catalog (0 without one): random_hash gives each its own row while they leave
    # one to spare in the budget (representations.RandomHash). Set from the catalog, not by users.
    catalog_size: int = 0

    def __post_init__(self):
        casts = {f.name: f.type for f in dataclasses.fields(self)}
        for name, typ in casts.items():
            value = getattr(self, name)
            if typ in (int, float, str):
                value = typ(value)
            elif typ is bool:
                value = bool(value)
            else:  # Tuple[int, ...]
                value = tuple(int(u) for u in value)
            object.__setattr__(self, name, value)
        if self.representation not in features.REPRESENTATIONS:
            raise ValueError(f"RankingConfig: representation must be one of "
                             f"{features.REPRESENTATIONS}, got {self.representation!r}")
        for name in ("item_table_size", "user_hash_buckets", "embedding_dim", "batch_size",
                     "max_epochs", "history_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RankingConfig: {name} must be positive")

    def hparams(self) -> dict:
        """The tuned settings this config trains with (results.csv's `hparams` column)."""
        return {name: getattr(self, name) for name in TUNABLE_FIELDS}

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]) -> "RankingConfig":
        cc = {k: v for k, v in dict(custom_config or {}).items() if k not in NON_MODEL_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cc) - known)
        if unknown:
            raise ValueError(f"RankingConfig: unknown custom_config key(s) {unknown}; "
                             f"known: {sorted(known)}")
        return cls(**{k: v for k, v in cc.items() if v is not None})
