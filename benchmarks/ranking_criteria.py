"""Issue 11's done-when, read off an experiment's results.csv: each criterion with its figures
and whether it holds. No training; it reads what `make experiment` wrote.

    .venv/bin/python benchmarks/ranking_criteria.py [--results_dir docs/results]

Figures: B = 10000, with history, seeds 0-2, mean over seeds, sample std (ddof = 1); paired
differences against random_hash per seed. The baselines are results.csv's baseline rows.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUDGET = 10000
SEEDS = (0, 1, 2)
DISTINCT_AT_BUDGET = ("random_hash", "sid_ngram_2", "sid_prefix_ngram", "sid_spm")
SID_REPRESENTATIONS = ("sid_ngram_1", "sid_ngram_2", "sid_prefix_ngram", "sid_spm")
MIN_OVERALL_RANDOM_HASH = 0.736
MIN_SID_OVERALL = 0.742
MIN_SID_NEW_ITEMS = 0.705
MIN_SHUFFLE_DROP = 0.005


def _runs(rows: List[dict]) -> Dict[str, Dict[int, dict]]:
    """{representation: {seed: row}} at BUDGET with history."""
    out: Dict[str, Dict[int, dict]] = {}
    for r in rows:
        if r["history"] == "with" and r["table_budget"] == BUDGET and r["seed"] in SEEDS:
            out.setdefault(r["representation"], {})[r["seed"]] = r
    return out


def _mean(runs: Dict[int, dict], key: str) -> float:
    return statistics.mean(r[key] for r in runs.values())


def criteria(rows: List[dict]) -> List[tuple]:
    """[(criterion, figures, holds)] for the done-when's ML-100K criteria."""
    from pipeline.experiment.results import is_baseline
    base = {r["representation"]: r for r in rows if is_baseline(r)}
    runs = _runs([r for r in rows if not is_baseline(r)])
    missing = [rep for rep in ("random_hash",) + SID_REPRESENTATIONS
               if set(runs.get(rep, {})) != set(SEEDS)]
    missing += [name for name in ("baseline_user_rate", "baseline_user_item_rate")
                if name not in base]
    if missing:
        raise ValueError(f"the results have no B = {BUDGET} runs with history for seeds "
                         f"{list(SEEDS)} (or no baseline row) of: {', '.join(missing)}; the "
                         f"done-when's figures are ML-100K's (docs/results)")
    user_item = base["baseline_user_item_rate"]["auc_overall"]
    user_new = base["baseline_user_rate"]["auc_new_items"]
    out = []
    for rep in DISTINCT_AT_BUDGET:
        overall = _mean(runs[rep], "auc_overall")
        out.append((f"{rep} overall >= baseline_user_item_rate",
                    f"{overall:.4f} vs {user_item:.4f}", overall >= user_item))
    rh = _mean(runs["random_hash"], "auc_overall")
    out.append(("random_hash overall >= 0.736", f"{rh:.4f}", rh >= MIN_OVERALL_RANDOM_HASH))
    for rep in sorted(runs):
        new = _mean(runs[rep], "auc_new_items")
        out.append((f"{rep} new items >= baseline_user_rate", f"{new:.4f} vs {user_new:.4f}",
                    new >= user_new))
    for rep in SID_REPRESENTATIONS:
        overall, new = _mean(runs[rep], "auc_overall"), _mean(runs[rep], "auc_new_items")
        diffs = [runs[rep][s]["auc_new_items"] - runs["random_hash"][s]["auc_new_items"]
                 for s in SEEDS]
        d_mean, d_std = statistics.mean(diffs), statistics.stdev(diffs)
        shuffle_drop = overall - _mean(runs[rep], "auc_shuffled_labels")
        parts = {"overall >= 0.742": overall >= MIN_SID_OVERALL,
                 "new items >= 0.705": new >= MIN_SID_NEW_ITEMS,
                 "overall >= random_hash's": overall >= rh,
                 "paired new-item gain > 2 std": d_mean > 2 * d_std,
                 "shuffle probe >= 0.005 below": shuffle_drop >= MIN_SHUFFLE_DROP}
        figures = (f"overall {overall:.4f}, new {new:.4f}, paired new-item diff "
                   f"{d_mean:+.4f} ± {d_std:.4f}, shuffle drop {shuffle_drop:.4f}; misses: "
                   + (", ".join(k for k, v in parts.items() if not v) or "none"))
        out.append((f"{rep}: the SID criteria", figures, all(parts.values())))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results_dir", default="docs/results")
    args = parser.parse_args(argv)
    from pipeline.experiment.results import read_results
    try:
        results = criteria(read_results(args.results_dir))
    except ValueError as e:
        print(f"ranking_criteria: {os.path.join(args.results_dir, 'results.csv')}: {e}",
              file=sys.stderr)
        return 2
    for name, figures, holds in results:
        print(f"{'holds ' if holds else 'MISSES'}  {name}: {figures}")
    sid_ok = any(h for n, _, h in results if n.endswith("the SID criteria"))
    others_ok = all(h for n, _, h in results if not n.endswith("the SID criteria"))
    print(f"done-when (ML-100K figures): {'met' if sid_ok and others_ok else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
