"""RqVaeConfig: what the RQ-VAE Trainer reads from custom_config.

Keys are the RunConfig `rqvae_*` fields without the prefix (num_levels, codebook_size, latent_dim,
hidden_units, beta, epochs, batch_size, learning_rate, dead_code_window, min_epochs, patience,
min_improvement, max_train_items) plus seed and, optionally,
embedding_dim (otherwise taken from the data). Prefixed keys (rqvae_num_levels, ...) are accepted
too. Missing keys take the defaults below, which RunConfig's rqvae_* fields take in turn.
"""
import dataclasses
from typing import Any, Mapping, Optional, Tuple

from models.json_config import JsonConfig

_PREFIX = "rqvae_"
_FIELDS = ("num_levels", "codebook_size", "latent_dim", "hidden_units", "beta", "epochs",
           "batch_size", "learning_rate", "dead_code_window", "min_epochs", "patience",
           "min_improvement", "max_train_items")


@dataclasses.dataclass
class RqVaeConfig(JsonConfig):
    # Paper: 1-layer encoder/decoder, latent 256, 8 levels x 2048 codes, beta 0.25. Default: 4
    # levels x 64 codes, latent 64; 64^4 = 16.8M SIDs leave collisions rare. A dataset may set its
    # own K (pipeline/config.py DEFAULT_CODEBOOK_SIZES: ML-100K's 1.7k items take 16, chosen on
    # validation, so a new item shares more than its first code with the catalog).
    num_levels: int = 4
    codebook_size: int = 64
    latent_dim: int = 64
    hidden_units: Tuple[int, ...] = ()  # () = the paper's 1-layer encoder/decoder
    beta: float = 0.25
    epochs: int = 200  # at most; training stops earlier once the loss stops improving:
    # after min_epochs, when `patience` epochs in a row did not lower the best reconstruction
    # loss by min_improvement (relative; models/rqvae/train.py Convergence). Set so that ML-100K
    # (7 steps an epoch) and ML-1M (16) still train 200 epochs and keep their SIDs (ML-1M would
    # stop at 173 with patience 20 and 1e-3); a 271k-item catalog (1,060 steps an epoch) stopped
    # improving after ~3 epochs.
    min_epochs: int = 20
    patience: int = 30
    min_improvement: float = 5e-4
    # Above this many items the RQ-VAE trains on a seeded sample of them (SemanticIdGen still
    # encodes every item): memory and epoch time stop growing with the catalog.
    max_train_items: int = 65_536
    batch_size: int = 256
    learning_rate: float = 1e-3
    dead_code_window: int = 20  # steps a code may go unused before it is reset
    seed: int = 0
    embedding_dim: Optional[int] = None  # None: taken from the data

    def __post_init__(self):
        self.hidden_units = tuple(int(u) for u in (self.hidden_units or ()))
        for name in ("num_levels", "codebook_size", "latent_dim", "epochs", "batch_size",
                     "min_epochs", "patience", "max_train_items"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"RqVaeConfig: {name} must be positive")

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]) -> "RqVaeConfig":
        cc = dict(custom_config or {})
        kwargs = {}
        for field in dataclasses.fields(cls):
            for key in (field.name, _PREFIX + field.name):
                if cc.get(key) is not None:
                    kwargs[field.name] = cc[key]
        casts = dict(num_levels=int, codebook_size=int, latent_dim=int, epochs=int,
                     batch_size=int, dead_code_window=int, seed=int, beta=float,
                     learning_rate=float, min_epochs=int, patience=int, min_improvement=float,
                     max_train_items=int)
        for k, f in casts.items():
            if k in kwargs:
                kwargs[k] = f(kwargs[k])
        if kwargs.get("embedding_dim") is not None:
            kwargs["embedding_dim"] = int(kwargs["embedding_dim"])
        return cls(**kwargs)

    @classmethod
    def paper(cls, **overrides) -> "RqVaeConfig":
        """Singh et al. 2024: 1-layer encoder/decoder, D=256, L=8, K=2048, beta=0.25."""
        return cls(**dict(dict(num_levels=8, codebook_size=2048, latent_dim=256,
                               hidden_units=(), beta=0.25), **overrides))
