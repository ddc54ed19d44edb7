"""The experiment's outputs in out_dir: results.csv (one row per run, appended as each run
finishes, and one per must-beat baseline), and from it table.md, summary.json and
auc_vs_budget.png (`summarize`).

results.csv's columns and summary.json's keys are a public contract (COLUMNS; `summarize`):
columns are added, never renamed. A baseline's row (pipeline/baselines.py) has its name as
representation and table_budget, history and seed blank; it is left out of the Δ columns. A
results.csv written before a column was added reads with that column blank, and gets the
column (blank) when the next row is appended.
"""
import csv
import hashlib
import json
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from data import locking
from pipeline import baselines as baselines_lib
from pipeline.config import RunConfig
from pipeline.experiment.metrics import (AUC_KEYS, SLICE_AUC_KEYS,
                                         TAIL_MAX_INTERACTIONS, TAIL_MIN_INTERACTIONS,
                                         check_verdict)
from pipeline.run import fmt_duration
from pipeline.tables import append_csv_row, cell, fmt_auc
from schemas import features

RESULTS_FILE = "results.csv"
TABLE_FILE = "table.md"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "auc_vs_budget.png"
BASE_CONFIG_FILE = "base_config.json"
EVALUATOR_CHECK_FILE = "evaluator_check.json"

# The values of the `history` column.
WITH, WITHOUT = "with", "without"

AUC_LABELS = {"auc_overall": "overall", "auc_new_items": "new items",
              "auc_existing_items": "existing items", "auc_tail": "tail (1-4 train interactions)",
              "auc_new_users": "new users", "auc_warm_users": "warm users",
              "auc_shuffled_labels": "shuffled history labels",
              "auc_shuffled_labels_new_items": "shuffled history labels, new items",
              "auc_no_history": "no history", "auc_no_history_new_items": "no history, new items"}
NUM_KEYS = tuple(baselines_lib.num_key(s) for s in baselines_lib.SLICES)
# The columns of the first version of results.csv: a file must have them all.
REQUIRED_COLUMNS = ("representation", "table_budget", "history", "seed",
                    "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
                    "num_eval", "num_new_items", "num_existing_items", "num_tail",
                    "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
                    "dataset", "config_key", "finished_at")
COLUMNS = ("representation", "table_budget", "history", "seed",
           "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
           "auc_new_users", "auc_warm_users",
           "auc_shuffled_labels", "auc_shuffled_labels_new_items",
           "auc_no_history", "auc_no_history_new_items",
           "num_eval", "num_new_items", "num_existing_items", "num_tail",
           "num_new_users", "num_warm_users",
           "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
           "dataset", "config_key", "finished_at", "hparams")
RUN_KEY = ("representation", "table_budget", "history", "seed")
# The table's AUC columns (with a Δ vs random_hash column each) and probe columns (without).
TABLE_AUC_KEYS = ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
                  "auc_new_users")
TABLE_PROBE_KEYS = ("auc_shuffled_labels", "auc_no_history")
_INT_COLUMNS = ("table_budget", "seed", "epochs_run", "best_epoch", "item_table_rows") + NUM_KEYS

# RunConfig fields that do not change what a run of the experiment computes (paths, runner,
# blessing thresholds) or that the experiment sweeps itself; every other field goes into the
# config key that results.csv rows carry.
_KEY_EXCLUDED = ("pipeline_name", "output_dir", "results_dir", "artifact_root", "runner",
                 "direct_num_workers", "beam_args", "enable_cache", "min_auc",
                 "auc_regression_tolerance",
                 "representation", "item_table_size", "use_history", "table_budgets",
                 "embed_batch_size", "encoder_dir", "encoder_workers", "encoder_threads")


# --- results.csv ---------------------------------------------------------------------------------
def config_key(base: RunConfig) -> str:
    """A short fingerprint of everything in the base config that changes what a run computes
    (model defaults, data, split, SIDs); rows written under another key are not mixed in."""
    from components import fingerprint
    from models.ranking import tuned
    from pipeline.pipeline import PREPROCESSING_MODULE, TRAINING_MODULE
    d = {k: v for k, v in base.to_dict().items() if k not in _KEY_EXCLUDED}
    # Added after rows were recorded; at its default it changes nothing, so rows keep their key.
    if d.get("synthetic_text") == "short":
        del d["synthetic_text"]
    d["dataset"] = base.dataset_name
    # The settings tuned for this dataset and the code that trains the model (and makes its
    # inputs) change every run too; export code (signatures, warm-up) does not.
    d["tuned_hparams"] = {k: v for k, v in tuned.load_all().get(base.dataset_name, {}).items()
                          if k != tuned.META_KEY}
    d["model_code"] = fingerprint.code_fingerprint(TRAINING_MODULE, PREPROCESSING_MODULE)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _parse_value(column: str, value: str):
    if value in ("", None):
        return None
    if column in _INT_COLUMNS:
        return int(value)
    if column.startswith("auc_") or column in ("best_val_auc", "seconds"):
        return float(value)
    return value


def read_results(out_dir: str) -> List[dict]:
    """Every row of results.csv, each with every column of COLUMNS (a column the file predates
    is None)."""
    path = os.path.join(out_dir, RESULTS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fieldnames = list(reader.fieldnames or [])
        missing = [c for c in REQUIRED_COLUMNS if c not in fieldnames]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; move it away to start afresh")
        columns = list(COLUMNS) + [c for c in fieldnames if c not in COLUMNS]
        return [{c: _parse_value(c, row.get(c)) for c in columns} for row in reader]


def _header(path: str) -> List[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def append_result(out_dir: str, row: dict) -> None:
    """Appends one row (header first when the file is new) and flushes it to disk. A file whose
    header is not COLUMNS (written before columns were added) is first rewritten with COLUMNS,
    its rows' new cells blank. Holds an exclusive lock on out_dir meanwhile, so the experiment's
    worker processes can share the file."""
    with locking.exclusive(out_dir):
        _append_row(os.path.join(out_dir, RESULTS_FILE), out_dir, row)


def _append_row(path: str, out_dir: str, row: dict) -> None:
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not new and _header(path) != list(COLUMNS):
        old = read_results(out_dir)
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
            writer.writeheader()
            for r in old:
                writer.writerow({c: cell(r.get(c)) for c in COLUMNS})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    append_csv_row(path, COLUMNS, row)


def is_baseline(row: dict) -> bool:
    """A baseline's row (pipeline/baselines.py), not a trained model's."""
    return row.get("representation") in baselines_lib.BASELINES


def baseline_key(name: str) -> tuple:
    """The run key of a baseline's row: its name, budget / history / seed blank."""
    return (name, None, None, None)


def run_key(row: dict) -> tuple:
    if is_baseline(row):
        return baseline_key(row["representation"])
    return (row["representation"], int(row["table_budget"]), row["history"], int(row["seed"]))


# --- aggregates ----------------------------------------------------------------------------------
def _mean_std(values: List[float]) -> Tuple[Optional[float], Optional[float], int]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None, 0
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return mean, std, len(values)


def significant(mean: Optional[float], std: Optional[float], n: int) -> bool:
    """The table's mark: at least 2 seeds and |mean paired difference| > 2 x its std."""
    return mean is not None and std is not None and n >= 2 and abs(mean) > 2 * std


def aggregate(rows: List[dict]) -> List[dict]:
    """One entry per (representation, budget, history) of the trained models (baselines aside):
    mean/std/n over seeds of each AUC (AUC_KEYS) and of the per-seed paired difference against
    random_hash at the same budget, history and seed (slices only: SLICE_AUC_KEYS)."""
    rows = [r for r in rows if not is_baseline(r)]
    by_key = {run_key(r): r for r in rows}
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["representation"], int(r["table_budget"]), r["history"]), []).append(r)
    order = {r: i for i, r in enumerate(features.REPRESENTATIONS)}
    out = []
    for (rep, budget, hist), members in sorted(
            groups.items(), key=lambda kv: (kv[0][2] != WITH, order.get(kv[0][0], 99), kv[0][1])):
        entry = {"representation": rep, "table_budget": budget, "history": hist,
                 "seeds": sorted(int(m["seed"]) for m in members),
                 "item_table_rows": members[0].get("item_table_rows"),
                 "epochs_run_mean": _mean_std([m.get("epochs_run") for m in members])[0],
                 "seconds_mean": _mean_std([m.get("seconds") for m in members])[0]}
        for k in AUC_KEYS:
            mean, std, n = _mean_std([m.get(k) for m in members])
            entry[k] = {"mean": mean, "std": std, "n": n}
            if rep != features.RANDOM_HASH and k in SLICE_AUC_KEYS:
                diffs = []
                for m in members:
                    ref = by_key.get((features.RANDOM_HASH, budget, hist, int(m["seed"])))
                    if ref is not None and ref.get(k) is not None and m.get(k) is not None:
                        diffs.append(m[k] - ref[k])
                mean, std, n = _mean_std(diffs)
                entry[f"{k}_vs_random_hash"] = {"mean": mean, "std": std, "n": n,
                                                "significant": significant(mean, std, n)}
        out.append(entry)
    return out


def baseline_entries(rows: List[dict]) -> Dict[str, dict]:
    """{baseline name: {auc_<slice>: AUC, num_<slice>: rows}} of the baselines' rows (in
    BASELINES order)."""
    found = {r["representation"]: r for r in rows if is_baseline(r)}
    return {name: {k: found[name].get(k) for k in SLICE_AUC_KEYS + NUM_KEYS}
            for name in baselines_lib.BASELINES if name in found}


def _pm(stat: Optional[dict], signed: bool = False) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    s = fmt.format(stat["mean"])
    s += " ± " + ("n/a" if stat.get("std") is None else f"{stat['std']:.4f}")
    if stat.get("significant"):
        s = f"**{s}** ✱"
    return s


def _value(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.4f}"


def format_table(entries: List[dict], history: str,
                 baselines: Optional[Dict[str, dict]] = None) -> str:
    """The models of one history setting (TABLE_AUC_KEYS with their Δ vs random_hash, then the
    probes TABLE_PROBE_KEYS), the baselines as rows under them (their AUCs; no Δ, no probes)."""
    head = ["representation", "budget B", "table rows", "seeds"]
    for k in TABLE_AUC_KEYS:
        head += [f"AUC {AUC_LABELS[k].split(' (')[0]}", "Δ vs random_hash"]
    head += [f"AUC {AUC_LABELS[k]}" for k in TABLE_PROBE_KEYS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        if e["history"] != history:
            continue
        cells = [e["representation"], str(e["table_budget"]), str(e["item_table_rows"]),
                 str(e["auc_overall"]["n"])]
        for k in TABLE_AUC_KEYS:
            cells += [_pm(e.get(k)), _pm(e.get(f"{k}_vs_random_hash"), signed=True)
                      if e["representation"] != features.RANDOM_HASH else "(reference)"]
        cells += [_pm(e.get(k)) for k in TABLE_PROBE_KEYS]
        lines.append("| " + " | ".join(cells) + " |")
    for name, b in (baselines or {}).items():
        cells = [f"*{name}*", "–", "–", "–"]
        for k in TABLE_AUC_KEYS:
            cells += [_value(b.get(k)), "–"]
        cells += ["–" for _ in TABLE_PROBE_KEYS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(entries: List[dict]) -> Tuple[Optional[int], List[dict]]:
    """The entries at the largest budget with history (the paper's main setting)."""
    with_hist = [e for e in entries if e["history"] == WITH]
    if not with_hist:
        return None, []
    budget = max(e["table_budget"] for e in with_hist)
    return budget, [e for e in with_hist if e["table_budget"] == budget]


_BASELINE_STYLES = dict(zip(baselines_lib.BASELINES, (":", "-.", "--")))


def baseline_lines(baselines: Optional[Dict[str, dict]], metric: str) -> List[Tuple[str, float]]:
    """(name, AUC) of the must-beat baselines to draw on a plot of `metric`. One at exactly 0.5
    scores every row of the slice alike (baseline_item_rate on new items: each gets μ) and is
    left off, so it does not stretch the axis."""
    return [(name, b[metric]) for name, b in (baselines or {}).items()
            if b.get(metric) is not None and b[metric] != 0.5]


def plot(entries: List[dict], path: str, baselines: Optional[Dict[str, dict]] = None) -> str:
    """AUC overall and on new items against the budget, one line per representation, the
    must-beat baselines (baseline_entries) as grey horizontal lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hist_settings = [h for h in (WITH, WITHOUT) if any(e["history"] == h for e in entries)]
    metrics = ("auc_overall", "auc_new_items")
    fig, axes = plt.subplots(len(hist_settings), 2, figsize=(12, 4.5 * len(hist_settings)),
                             squeeze=False)
    reps = [r for r in features.REPRESENTATIONS if any(e["representation"] == r for e in entries)]
    reps += sorted({e["representation"] for e in entries} - set(reps))
    for row, hist in enumerate(hist_settings):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for i, rep in enumerate(reps):
                pts = sorted((e["table_budget"], e[metric]["mean"], e[metric]["std"] or 0.0)
                             for e in entries if e["representation"] == rep
                             and e["history"] == hist and e[metric]["mean"] is not None)
                if not pts:
                    continue
                x, y, err = zip(*pts)
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=rep,
                            linestyle="--" if rep == features.DENSE_CONTENT else "-")
            for name, value in baseline_lines(baselines, metric):
                ax.axhline(value, color="gray", linestyle=_BASELINE_STYLES[name], linewidth=1.2,
                           label=f"{name} (no model)")
            ax.set_xscale("log")
            budgets = sorted({e["table_budget"] for e in entries})
            ax.set_xticks(budgets)
            ax.set_xticklabels([str(b) for b in budgets])
            ax.minorticks_off()
            ax.set_xlabel("item table budget B (rows)")
            ax.set_ylabel("AUC")
            ax.set_title(f"{AUC_LABELS[metric]} AUC, {hist} user history")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Eval AUC against table budget (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize(out_dir: str) -> dict:
    """results.csv -> table.md, summary.json and auc_vs_budget.png; returns the summary."""
    all_rows = read_results(out_dir)
    rows = [r for r in all_rows if not is_baseline(r)]
    if not rows:
        raise ValueError(f"no results in {os.path.join(out_dir, RESULTS_FILE)}")
    entries = aggregate(rows)
    baselines = baseline_entries(all_rows)
    check = None
    check_path = os.path.join(out_dir, EVALUATOR_CHECK_FILE)
    if os.path.exists(check_path):
        with open(check_path) as f:
            check = json.load(f)
    plot_path = plot(entries, os.path.join(out_dir, PLOT_FILE), baselines)
    budget, head = headline(entries)
    datasets = sorted({r.get("dataset") or "?" for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    summary = {"dataset": datasets, "num_runs": len(rows), "seeds": seeds,
               "config_keys": sorted({r.get("config_key") or "" for r in rows}),
               "total_run_seconds": float(sum(r.get("seconds") or 0.0 for r in rows)),
               "headline_budget": budget, "groups": entries, "baselines": baselines,
               "evaluator_check": check,
               "plot": plot_path,
               "significance_rule": "|mean paired difference| > 2 x std of the paired "
                                    "differences over seeds (sample std), at least 2 seeds"}
    with open(os.path.join(out_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)

    lines = [f"# Experiment: item representations x table budget x user history "
             f"({', '.join(datasets)})", "",
             f"{len(rows)} training runs; seeds {seeds} (a seed changes the ranking model's "
             f"initialisation, dropout and the shuffling order only: the split, the Semantic IDs "
             f"and the SentencePiece models are the base pipeline run's, fixed). Early stopping "
             f"uses the validation split; nothing is tuned on eval. Total training time "
             f"{fmt_duration(summary['total_run_seconds'])}.", "",
             "AUC: exact ROC AUC on the eval split (the end of the timeline) — overall, "
             "on new items (held out, never in train), on existing items, on the tail: "
             f"items with {TAIL_MIN_INTERACTIONS} to {TAIL_MAX_INTERACTIONS} training "
             "interactions (new items excluded), and on new users (no row in the train split; "
             "warm users in results.csv). Cells: mean ± sample std over seeds.", "",
             "Probes (runs with history): the same model on the eval rows with each row's "
             "history labels shuffled among its history items (fixed seed), and with the "
             "history removed (no history items, labels or mask). An AUC that barely drops "
             "means the model barely uses that part of the history.", "",
             "Must-beat baselines (*italic* rows, no model; pipeline/baselines.py): "
             "baseline_user_rate = (positives + 1) / (n + 2) over the row's history labels (at "
             "most H = history_length); baseline_item_rate = (positives + 5μ) / (n + 5) over the "
             "item's train rows, μ the train split's positive rate (a new item gets μ); "
             "baseline_user_item_rate = the sum of their log-odds.", "",
             "Δ vs random_hash: the per-seed paired difference (representation's AUC − "
             "random_hash's AUC at the same budget, history setting and seed), mean ± std over "
             "seeds. **Bold ✱** marks a difference whose |mean| exceeds 2× its std across seeds "
             "(at least 2 seeds) — a rough screen, not a formal test with 3 seeds.", ""]
    if check:
        lines += [f"Metric check: on the base run ({check.get('representation')}, "
                  f"B={check.get('item_table_size')}) the in-process AUCs equal the pipeline "
                  f"Evaluator's (TFMA) within {check.get('tolerance')}: "
                  + ", ".join(f"{AUC_LABELS[k]} {fmt_auc(check['evaluator'].get(k))} (TFMA) vs "
                              f"{fmt_auc(check['in_process'].get(k))}" for k in check["evaluator"])
                  + f" — {check_verdict(check)}.", ""]
    if head:
        lines += [f"## Headline: largest budget (B={budget}) with user history", "",
                  "| representation | AUC overall | AUC new items | Δ overall vs random_hash "
                  "| Δ new items vs random_hash | AUC new users | AUC shuffled history labels |",
                  "|---|---|---|---|---|---|---|"]
        for e in head:
            ref = e["representation"] == features.RANDOM_HASH
            lines.append(f"| {e['representation']} | {_pm(e['auc_overall'])} | "
                         f"{_pm(e['auc_new_items'])} | "
                         f"{'(reference)' if ref else _pm(e.get('auc_overall_vs_random_hash'), True)} | "
                         f"{'(reference)' if ref else _pm(e.get('auc_new_items_vs_random_hash'), True)} | "
                         f"{_pm(e.get('auc_new_users'))} | {_pm(e.get('auc_shuffled_labels'))} |")
        for name, b in baselines.items():
            lines.append(f"| *{name}* | {_value(b.get('auc_overall'))} | "
                         f"{_value(b.get('auc_new_items'))} | – | – | "
                         f"{_value(b.get('auc_new_users'))} | – |")
        lines.append("")
    for hist in (WITH, WITHOUT):
        if any(e["history"] == hist for e in entries):
            lines += [f"## {hist.capitalize()} user history", "",
                      format_table(entries, hist, baselines), ""]
    lines += [f"Plot: `{os.path.basename(plot_path)}`; per-run rows: `{RESULTS_FILE}`; "
              f"aggregates: `{SUMMARY_FILE}`.", ""]
    with open(os.path.join(out_dir, TABLE_FILE), "w") as f:
        f.write("\n".join(lines))
    return summary
