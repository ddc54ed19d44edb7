"""Tuning of the ranking model per representation and dataset (`semids tune`), on the
validation split only: eval is never read.

Validation normally holds no new items (a held-out item loses every row before the eval cut), so
the tuning base run holds out a second, disjoint, seeded share of items whose rows before the
validation cut are dropped (InteractionFeatures' validation_new_item_fraction): they are new in
validation. Each trial trains at the largest table budget, with history, seeds TUNING_SEEDS, and
is scored by the mean of its validation AUC on existing items and on the new items, averaged over
the seeds (OBJECTIVE_DEFINITION; trials scored by an earlier definition do not count).
`trials` points are drawn from SEARCH_SPACE, each tried with every CROSSED value. The best
trial's settings go into models/ranking/tuned_hparams.json (read by pipeline.ranking_config for
every budget, history setting and seed); every trial goes into
results/tuning/<dataset>/tuning.csv (resumable), with the RQ-VAE's codebook size: a SID
representation's trials count only at the tuning run's. Several `semids tune` processes may
share one trials file: each claims a trial before training it (claim_trial), so they split the work.
Stock KerasTuner runs on Keras 3 here and rejects tf-keras models, hence this small runner.
"""
import dataclasses
import hashlib
import itertools
import json
import os
import random
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from models.ranking import tuned as tuned_lib
from models.ranking.config import TUNABLE_FIELDS, RankingConfig
from pipeline.config import RunConfig
from pipeline.tables import append_csv_row, read_csv_rows, upgrade_csv_header
from schemas import features

# The search space: every combination is a candidate; `trials` of them are drawn per
# representation (seeded), RankingConfig's defaults always among them.
SEARCH_SPACE: Dict[str, tuple] = {
    "learning_rate": (1e-3, 3e-3),
    "embedding_dim": (16, 32),
    "dropout": (0.3, 0.5),
    "l2": (0.0, 1e-3),
    "cold_start_dropout": (0.0, 0.3),
    "attention": (True, False),
    "use_user_id": (False, True),
}
# Switches of the model's structure, tried with every drawn point rather than drawn. Each was added
# after earlier tunings, whose rows trained with its first value (RankingConfig's default).
CROSSED: Dict[str, tuple] = {
    "user_rate_offset": (False, True),
}
assert set(SEARCH_SPACE) | set(CROSSED) == set(TUNABLE_FIELDS)
DEFAULT_TRIALS = 8
# 30% of the items are new in validation (about 2,500 rows and 375 items on ML-100K; 10% gave 879
# rows, too few to tell trials apart).
VALIDATION_NEW_ITEM_FRACTION = 0.3
TUNING_SEEDS = (0, 1)
TUNING_FILE = "tuning.csv"
CLAIMS_DIR = "claims"  # beside the trials file: one file per trial being trained, holding its pid
COLUMNS = ("dataset", "representation", "table_budget", "trial", "hparams", "objective",
           "val_auc_overall", "val_auc_new_items", "epochs_run", "best_epoch", "seconds", "seed",
           "validation_new_item_fraction", "codebook_size", "val_auc_existing_items",
           "objective_definition", "representation_revision")
# What a trial is chosen by, tuning.csv's `objective_definition`. Until 2026-12-05 "overall_new":
# but validation's overall AUC is a third on new items (30% of the items are held out for them;
# eval's is a tenth), so it counted the new items twice and the existing items, most of eval's
# overall AUC, at half weight. "existing_new" weighs the two disjoint slices equally.
OBJECTIVE_DEFINITIONS = {
    "overall_new": "mean of validation AUC overall and on items new in validation",
    "existing_new": "mean of validation AUC on existing items and on items new in validation",
}
OBJECTIVE_DEFINITION = "existing_new"


def candidates(trials: int, seed: int = 0) -> List[dict]:
    """RankingConfig's defaults, then `trials - 1` other points of SEARCH_SPACE (seeded); all of
    them with the first CROSSED values, then again with each further combination."""
    defaults = {name: RankingConfig().hparams()[name] for name in SEARCH_SPACE}
    grid = [dict(zip(SEARCH_SPACE, values)) for values in itertools.product(*SEARCH_SPACE.values())]
    others = [g for g in grid if g != defaults]
    random.Random(seed).shuffle(others)
    drawn = [defaults] + others[:max(0, trials - 1)]
    return [{**point, **dict(zip(CROSSED, values))}
            for values in itertools.product(*CROSSED.values()) for point in drawn]


def complete(settings: dict) -> dict:
    """A trial's settings with every tunable field: a row written before a field existed trained
    with the field's default."""
    return {**RankingConfig().hparams(), **settings}


def trial_aucs(labels: np.ndarray, scores: np.ndarray,
               new: np.ndarray) -> Dict[str, Optional[float]]:
    """A trial's validation AUCs (tuning.csv's columns): overall, on the rows of items new in
    validation (boolean mask `new`) and on the others; None for an empty or one-class slice."""
    from pipeline.baselines import exact_auc
    labels, scores, new = (np.asarray(a).reshape(-1) for a in (labels, scores, new))
    new = new.astype(bool)
    return {"val_auc_overall": exact_auc(labels, scores),
            "val_auc_new_items": exact_auc(labels[new], scores[new]),
            "val_auc_existing_items": exact_auc(labels[~new], scores[~new])}


def objective(aucs: Dict[str, Optional[float]],
              definition: str = OBJECTIVE_DEFINITION) -> float:
    """What a trial is chosen by (OBJECTIVE_DEFINITIONS) from its `trial_aucs`: the new items'
    AUC and the existing items' (or, "overall_new", the overall) equally weighted; the overall
    AUC alone when validation has no new items."""
    if definition not in OBJECTIVE_DEFINITIONS:
        raise ValueError(f"objective: unknown definition {definition!r}; known: "
                         f"{sorted(OBJECTIVE_DEFINITIONS)}")
    if aucs["val_auc_new_items"] is None:
        return aucs["val_auc_overall"]
    first = aucs["val_auc_overall" if definition == "overall_new" else "val_auc_existing_items"]
    return 0.5 * (first + aucs["val_auc_new_items"])


def hparams_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


# The values of the columns tuning.csv gained later, for rows written before them (one seed, 0,
# 10% of the items new in validation, the RQ-VAE's 64 codes per level, the first objective; their
# existing-item AUC was not recorded).
EARLIER_PROTOCOL = {"seed": "0", "validation_new_item_fraction": "0.1", "codebook_size": "64",
                    "objective_definition": "overall_new", "representation_revision": "1"}


# Raised for a representation when what it computes changes, so that its trials of the earlier
# revision stop counting (tuning.csv's `representation_revision`; 1 where not listed).
# random_hash 2: one row per catalog item while the catalog leaves a row to spare (it hashed
# every id before; models/ranking/representations.RandomHash).
REPRESENTATION_REVISIONS: Dict[str, int] = {features.RANDOM_HASH: 2}


def representation_revision(representation: str) -> str:
    return str(REPRESENTATION_REVISIONS.get(representation, 1))


def read_trials(path: str) -> List[dict]:
    return read_csv_rows(path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def claim_trial(out_dir: str, key: str) -> Optional[str]:
    """Claims trial `key` for this process: the claim's path, or None when a live process holds
    it. A claim of a stopped process (its pid gone) is taken over, so a killed run resumes."""
    claims = os.path.join(out_dir, CLAIMS_DIR)
    os.makedirs(claims, exist_ok=True)
    path = os.path.join(claims, hashlib.sha256(key.encode()).hexdigest()[:16])
    mine = f"{path}.{os.getpid()}"
    with open(mine, "w") as f:
        f.write(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(mine, path)  # atomic, and the claim never exists without its pid
                return path
            except FileExistsError:
                try:
                    with open(path) as f:
                        holder = int(f.read().strip() or 0)
                except (FileNotFoundError, ValueError):
                    holder = 0
                if holder and holder != os.getpid() and _process_alive(holder):
                    return None
                release_trial(path)  # stale: its process has stopped
        return None
    finally:
        os.remove(mine)


def release_trial(claim: str) -> None:
    try:
        os.remove(claim)
    except FileNotFoundError:
        pass


def protocol_trials(rows: Sequence[dict], dataset: str, fraction: str,
                    codebook_size: str) -> List[dict]:
    """The trials of `rows` that count for this tuning, their hparams completed: earlier rows
    with another held-out share scored another validation split, rows scored by another objective
    definition are not comparable, rows of another revision of the representation trained
    another model, and a SID representation's rows with another codebook size scored other SIDs
    (random_hash and dense_content read none)."""
    return [dict(r, hparams=hparams_key(complete(json.loads(r["hparams"])))) for r in rows
            if r["dataset"] == dataset and r.get("validation_new_item_fraction") == fraction
            and r.get("objective_definition") == OBJECTIVE_DEFINITION
            and r.get("representation_revision", "1") == representation_revision(
                r["representation"])
            and (r.get("codebook_size") == codebook_size
                 or r["representation"] not in features.SID_REPRESENTATIONS)]


def best_settings(rows: Sequence[dict]) -> Dict[str, dict]:
    """{representation: the settings of its best trial} by the trial's objective averaged over
    its seeds' rows (ties: the earlier trial)."""
    objectives: Dict[tuple, List[float]] = {}
    first_trial: Dict[tuple, int] = {}
    for row in rows:
        key = (row["representation"], row["hparams"])
        objectives.setdefault(key, []).append(float(row["objective"]))
        first_trial[key] = min(first_trial.get(key, int(row["trial"])), int(row["trial"]))
    best: Dict[str, tuple] = {}
    for key in sorted(objectives, key=lambda k: first_trial[k]):
        mean = sum(objectives[key]) / len(objectives[key])
        if key[0] not in best or mean > best[key[0]][0]:
            best[key[0]] = (mean, key[1])
    return {rep: json.loads(hparams) for rep, (_, hparams) in best.items()}


def write_tuned(dataset: str, rows: Sequence[dict], meta: dict,
                path: str = tuned_lib.TUNED_HPARAMS_FILE) -> dict:
    """Merges this dataset's chosen settings into tuned_hparams.json (other datasets kept). A
    representation none of whose trials count (its revision or the protocol changed, and it has
    not been tuned again) keeps the settings it had, listed in the meta's
    `kept_from_earlier_tuning`, rather than falling back to the model's defaults unannounced."""
    everything = tuned_lib.load_all(path)
    previous = everything.get(dataset, {})
    chosen = best_settings(rows)
    kept = sorted(rep for rep in previous if rep != tuned_lib.META_KEY and rep not in chosen)
    entry = {rep: settings for rep, settings in
             sorted({**{rep: previous[rep] for rep in kept}, **chosen}.items())}
    entry[tuned_lib.META_KEY] = {**meta, "kept_from_earlier_tuning": kept} if kept else meta
    everything[dataset] = entry
    with open(path, "w") as f:
        json.dump(everything, f, indent=2, sort_keys=True)
        f.write("\n")
    return entry


def tuning_config(base: RunConfig,
                  validation_new_item_fraction: float = VALIDATION_NEW_ITEM_FRACTION) -> RunConfig:
    """The tuning base run: its own pipeline, named by its held-out share (so the experiment's
    cache stays), and its own results folder (so `make run`'s metrics.json stays), with items
    held out of the train split that are new in validation."""
    percent = round(100 * validation_new_item_fraction)
    return dataclasses.replace(base, pipeline_name=f"{base.pipeline_name}_tune{percent}",
                               results_dir=os.path.join(base.results_dir, "tuning"),
                               validation_new_item_fraction=validation_new_item_fraction)


def run_tuning(base: RunConfig, representations: Sequence[str] = features.REPRESENTATIONS,
               trials: int = DEFAULT_TRIALS, out_dir: Optional[str] = None,
               tuned_path: str = tuned_lib.TUNED_HPARAMS_FILE, quiet: bool = False,
               log=print) -> dict:
    from pipeline import pipeline as pipeline_lib
    from pipeline.experiment.data import (IS_NEW_ITEM, LABEL, predict_scores, prepare_base_run,
                                          run_features, train_in_memory)
    from pipeline.run import fmt_duration

    cfg_tune = tuning_config(base)
    out_dir = out_dir or os.path.join(base.results_dir, "tuning", base.dataset_name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, TUNING_FILE)
    upgrade_csv_header(path, COLUMNS, EARLIER_PROTOCOL)  # rows of before its last columns
    budget = max(cfg_tune.all_table_budgets)
    start = time.time()
    log(f"tune: base pipeline run {cfg_tune.pipeline_name!r} ({base.dataset_name}, "
        f"validation_new_item_fraction={VALIDATION_NEW_ITEM_FRACTION})")
    _, data, catalog_embeddings = prepare_base_run(cfg_tune, quiet=quiet)
    val_meta = data.get(features.VALIDATION, [LABEL, IS_NEW_ITEM])
    new = val_meta[IS_NEW_ITEM] == 1
    log(f"tune: validation {len(new)} rows, {int(new.sum())} on items new in validation; "
        f"B={budget}, with history, seeds {list(TUNING_SEEDS)}, {trials} points x "
        f"{len(candidates(1))} structural variants per representation")

    fraction = str(VALIDATION_NEW_ITEM_FRACTION)
    codebook_size = str(cfg_tune.rqvae_codebook_size)

    def protocol_rows():  # read afresh: other processes may be adding rows
        return protocol_trials(read_trials(path), base.dataset_name, fraction, codebook_size)

    def done_trials():
        return {(r["representation"], r["hparams"], r["seed"]) for r in protocol_rows()}

    done = done_trials()
    for rep in representations:
        names = run_features(rep, budget, True)
        data.keep(set(names) | {LABEL, IS_NEW_ITEM})
        train = data.get(features.TRAIN, names)
        val = data.get(features.VALIDATION, names)
        for (trial, settings), seed in itertools.product(enumerate(candidates(trials)),
                                                        TUNING_SEEDS):
            key = (rep, hparams_key(settings), str(seed))
            if key in done:
                continue
            claim = claim_trial(out_dir, json.dumps((base.dataset_name, fraction, codebook_size)
                                                     + key))
            if claim is None:  # another process is training it
                continue
            done = done_trials()  # another process may have finished it since the last read
            if key in done:
                release_trial(claim)
                continue
            t0 = time.time()
            cfg = pipeline_lib.ranking_config(dataclasses.replace(
                cfg_tune, representation=rep, item_table_size=budget, use_history=True,
                seed=seed, **settings))
            model, summary = train_in_memory(cfg, train, val, catalog_embeddings)
            aucs = trial_aucs(val_meta[LABEL], predict_scores(model, val), new)
            row = {"dataset": base.dataset_name, "representation": rep, "table_budget": budget,
                   "trial": trial, "hparams": hparams_key(settings),
                   "objective": round(objective(aucs), 6),
                   **{k: None if v is None else round(v, 6) for k, v in aucs.items()},
                   "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
                   "seconds": round(time.time() - t0, 1), "seed": seed,
                   "validation_new_item_fraction": fraction, "codebook_size": codebook_size,
                   "objective_definition": OBJECTIVE_DEFINITION,
                   "representation_revision": representation_revision(rep)}
            append_csv_row(path, COLUMNS, row)  # whole or not at all: a stopped run resumes
            release_trial(claim)
            log(f"  {rep:<16} trial {trial} seed {seed}: objective {row['objective']:.4f} (val "
                f"overall {row['val_auc_overall']}, new {row['val_auc_new_items']}, existing "
                f"{row['val_auc_existing_items']})"
                f" {row['hparams']} {row['seconds']:.0f}s, elapsed "
                f"{fmt_duration(time.time() - start)}")
    meta = {"objective": f"{OBJECTIVE_DEFINITIONS[OBJECTIVE_DEFINITION]}, averaged over the seeds",
            "objective_definition": OBJECTIVE_DEFINITION,
            "validation_new_item_fraction": VALIDATION_NEW_ITEM_FRACTION,
            "table_budget": budget, "use_history": True, "seeds": list(TUNING_SEEDS),
            "codebook_size": cfg_tune.rqvae_codebook_size,
            "trials": trials,
            "search_space": {k: list(v) for k, v in SEARCH_SPACE.items()},
            "crossed": {k: list(v) for k, v in CROSSED.items()},
            "trials_file": os.path.relpath(path, base.results_dir)}
    # Every trial of this dataset and held-out share in tuning.csv (earlier sittings too): each
    # representation's best over all its trials.
    entry = write_tuned(base.dataset_name, protocol_rows(), meta, tuned_path)
    log(f"tune: {tuned_path} updated for {base.dataset_name}: " + json.dumps(
        {k: v for k, v in entry.items() if k != tuned_lib.META_KEY}, sort_keys=True))
    kept = entry[tuned_lib.META_KEY].get("kept_from_earlier_tuning")
    if kept:
        log(f"tune: no trial of the current protocol for {', '.join(kept)}: kept their earlier "
            f"settings (tune them: --representations {','.join(kept)})")
    return entry
