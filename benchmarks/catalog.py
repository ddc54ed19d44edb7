"""The pipeline at catalog scale: the item side on 270k realistic synthetic items with the
pipeline's own settings, every representation trained, pushed and served on that catalog, and
the fast path (items.csv's `embedding` column) beside the encoder.

    .venv/bin/python benchmarks/catalog.py          # resumable (state in outputs/catalog)
    .venv/bin/python benchmarks/catalog.py --items 3000 --small_items 1000 \\
        --interactions 20000 --fast_path_items 2000 --out /tmp/cat --work_dir /tmp/cat/work

Runs (each its own TFX pipeline, LocalDagRunner, one subprocess per stage as in scale.py, whose
stage runner and memory sampler this reuses):
  items-<n>     --small_items (27k) items: ItemExampleGen, ContentEmbedder, RqVaeTrainer,
                SemanticIdGen; with the catalog run, the two points of
                item_side_with_rqvae_exponent
  catalog-<N>   --items (270k) items, --interactions impressions: the same item stages
                (item_side_seconds_270k = ContentEmbedder + RqVaeTrainer + SemanticIdGen), then
                the whole pipeline up to the Pusher once per representation (the representation
                is a Trainer setting, so only the Trainer, Evaluator and Pusher run again); each
                pushed model is served by `semids serve` and asked over REST for an existing and
                a new catalog item
  fast-path-<n> --fast_path_items items whose items.csv has an `embedding` column: ContentEmbedder
                copies it instead of encoding (fast_path_items_per_s)

Unlike scale.py, nothing is fixed for comparability: the RQ-VAE is sized by the sizing rule
(models/rqvae/sizing.py), stops early and trains on a sample above 65,536 items, the encoder plan
is runners.content_embedder_plan's, and the ranking model is the default one with one epoch.

Writes <out>/catalog.json and adds item_side_seconds_270k, item_side_peak_rss_gib_270k,
item_side_with_rqvae_exponent and fast_path_items_per_s to <out>/results.json; prints a
check per target (item side < 25 min and < 4 GiB; dense_content's pushed model within 1.2 x its
table + the largest other model; its Trainer within 2 GiB of random_hash's; every model served).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
import models  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow: models/__init__.py)

from schemas import features  # noqa: E402


def _load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is not a package, and its serving.py would
    shadow the serving package on sys.path)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", os.path.join(REPO_ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


scale = _load_benchmark("scale")  # the stage runner, memory sampler, state file, token lengths

DEFAULT_OUT = os.path.join(REPO_ROOT, "docs", "perf")
DEFAULT_WORK = os.path.join(REPO_ROOT, "outputs", "catalog")
ITEM_STAGES = ("ItemExampleGen", "ContentEmbedder", "RqVaeTrainer", "SemanticIdGen")
ITEM_SIDE = ("ContentEmbedder", "RqVaeTrainer", "SemanticIdGen")
MODEL_STAGE = "Pusher"
TARGET_ITEM_SIDE_S = 25 * 60.0
TARGET_PEAK_GIB = 4.0
TARGET_MODEL_RATIO = 1.2
TARGET_TRAINER_EXTRA_GIB = 2.0
EMBEDDING_DIM = 384  # MiniLM's, and the fast path's column
INTERACTIONS_PER_USER = 50
STAGE_TIMEOUT_S = 90 * 60.0


def run_config(key: str, work_dir: str, num_items: int, num_interactions: int,
               table_budget: int, representation: str = features.RANDOM_HASH,
               data_dir: Optional[str] = None):
    """A run's RunConfig: the pipeline's defaults with realistic texts, one table budget, one
    ranking epoch and an Evaluator that blesses every model (what is checked here is that each
    representation trains, pushes and serves at this size, not its AUC). `data_dir`: a prepared
    dataset=csv folder instead of the synthetic generator."""
    from pipeline.config import RunConfig
    out = os.path.join(work_dir, key)
    data = ({"dataset": "csv", "data_dir": data_dir} if data_dir else
            {"dataset": "synthetic", "synthetic_text": "realistic",
             "synthetic_num_items": num_items, "synthetic_num_interactions": num_interactions,
             "synthetic_num_users": max(100, num_interactions // INTERACTIONS_PER_USER)})
    return RunConfig(pipeline_name=f"catalog-{key}", output_dir=out,
                     results_dir=os.path.join(out, "results"), item_table_size=table_budget,
                     table_budgets=(table_budget,), representation=representation,
                     max_epochs=1, early_stopping_patience=1, min_auc=0.0,
                     auc_regression_tolerance=1.0, **data)


def write_config(config, name: str) -> str:
    os.makedirs(config.output_dir, exist_ok=True)
    path = os.path.join(config.output_dir, f"{name}.json")
    with open(path, "w") as f:
        f.write(config.to_json())
    return path


def run_stages(rs: Dict, key: str, config, config_path: str, stages, state_path: str,
               state: Dict, label: str = "") -> bool:
    """Runs the stages not finished yet (scale.measure_stage); True when all finished."""
    log_path = os.path.join(config.output_dir, "stages.log")
    for stage in stages:
        name = f"{label}{stage}"
        if rs["stages"].get(name, {}).get("returncode") == 0:
            continue
        print(f"[{key}] stage up to {stage}{' (' + label.rstrip(':') + ')' if label else ''} "
              f"(log {log_path})", flush=True)
        result = scale.measure_stage(config_path, config.metadata_path, stage, log_path,
                                     timeout_s=STAGE_TIMEOUT_S, prefix=f"[{key}]")
        rs["stages"][name] = result
        scale.save_state(state_path, state)
        scale.print_components(key, result)
        if result["returncode"] != 0 or result["timed_out"]:
            scale.print_failure(key, stage, result, log_path)
            return False
    return True


def item_side(rs: Dict) -> Tuple[Optional[float], Optional[float]]:
    """(summed wall seconds, largest peak GiB) of ContentEmbedder + RqVaeTrainer +
    SemanticIdGen in a run's item stages, or (None, None) while one is missing."""
    comps = {}
    for stage in ITEM_STAGES:
        comps.update(rs["stages"].get(stage, {}).get("components", {}))
    if not all(c in comps for c in ITEM_SIDE):
        return None, None
    return (round(sum(comps[c]["wall_s"] for c in ITEM_SIDE), 1),
            max(comps[c]["peak_rss_gib"] for c in ITEM_SIDE))


# --- the fast path's data ----------------------------------------------------------------------

def write_fast_path_data(out_dir: str, num_items: int, seed: int = 0) -> str:
    """A realistic synthetic dataset whose items.csv carries an `embedding` column: seeded unit
    vectors of MiniLM's dimension (the values do not change the copy's cost)."""
    import numpy as np

    from data.synthetic import generate_synthetic
    marker = os.path.join(out_dir, "fast_path.done")
    if os.path.exists(marker):
        return out_dir
    src = os.path.join(out_dir, "source")
    generate_synthetic(src, num_users=max(100, 4 * num_items // INTERACTIONS_PER_USER),
                       num_items=num_items, num_interactions=4 * num_items, seed=seed,
                       text_mode="realistic")
    rng = np.random.default_rng(seed)
    with open(os.path.join(src, "items.csv"), newline="", encoding="utf-8") as f_in, \
            open(os.path.join(out_dir, "items.csv"), "w", newline="", encoding="utf-8") as f_out:
        reader, writer = csv.reader(f_in), csv.writer(f_out)
        writer.writerow(next(reader) + ["embedding"])
        for row in reader:
            v = rng.standard_normal(EMBEDDING_DIM)
            v /= np.linalg.norm(v)
            writer.writerow(row + [" ".join(f"{x:.6f}" for x in v)])
    os.replace(os.path.join(src, "interactions.csv"), os.path.join(out_dir, "interactions.csv"))
    open(marker, "w").close()
    return out_dir


# --- serving each pushed model -----------------------------------------------------------------

def probe_rows(data_dir: str, history_length: int) -> List[Dict]:
    """Two REST instances for one user: an item with impressions (existing) and a catalog item
    with none (new), with a history of the user's first items."""
    with open(os.path.join(data_dir, "interactions.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    seen = {r[features.ITEM_ID] for r in rows}
    user = rows[0][features.USER_ID]
    mine = [r for r in rows if r[features.USER_ID] == user][:history_length]
    history = [r[features.ITEM_ID] for r in mine]
    labels = [int(float(r[features.LABEL])) for r in mine]
    pad = history_length - len(history)
    history, labels = history + [features.HISTORY_PAD] * pad, labels + [0] * pad
    with open(os.path.join(data_dir, "items.csv"), newline="", encoding="utf-8") as f:
        new_item = next(r[features.ITEM_ID] for r in csv.DictReader(f)
                        if r[features.ITEM_ID] not in seen)
    return [{features.USER_ID: user, features.ITEM_ID: item, features.HISTORY: history,
             features.HISTORY_LABELS: labels} for item in (rows[0][features.ITEM_ID], new_item)]


def serve_and_ask(model_dir: str, rows: List[Dict]) -> Dict:
    """Starts `semids serve` on one pushed model (version 1 of a fresh base path), sends one
    REST predict and reports status, predictions and seconds to ready."""
    import httpx
    serving_bench = _load_benchmark("serving")
    base = tempfile.mkdtemp(prefix="semids-catalog-serve-")
    os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))
    started = time.time()
    proc, rest_port, _ = serving_bench.start_server(base, enable_batching=False)
    ready_s = time.time() - started
    try:
        r = httpx.post(f"http://127.0.0.1:{rest_port}/v1/models/semids:predict",
                       json={"instances": rows}, timeout=120)
        body = r.json()
        preds = body.get("predictions") if isinstance(body, dict) else None
        flat = [float(p[0] if isinstance(p, list) else p) for p in preds or []]
        ok = (r.status_code == 200 and len(flat) == len(rows)
              and all(math.isfinite(p) for p in flat))
        return {"served": ok, "status": r.status_code, "predictions": flat,
                "ready_s": round(ready_s, 1), "error": None if ok else str(body)[:500]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


# --- the runs ----------------------------------------------------------------------------------

def run_item_side(state, state_path, key, config) -> Dict:
    rs = state["runs"].setdefault(key, {"stages": {}})
    rs.update(num_items=config.synthetic_num_items if config.dataset == "synthetic" else None,
              rqvae={"num_levels": config.rqvae_num_levels,
                     "codebook_size": config.rqvae_codebook_size,
                     "max_train_items": config.rqvae_max_train_items})
    path = write_config(config, "config")
    rs["finished"] = run_stages(rs, key, config, path, ITEM_STAGES, state_path, state)
    items_csv = os.path.join(config.prepared_data_dir, "items.csv")
    if rs["finished"] and not rs.get("text_tokens") and os.path.isfile(items_csv):
        rs["text_tokens"] = scale.token_length_quantiles(items_csv)
    rs["item_side_s"], rs["item_side_peak_rss_gib"] = item_side(rs)
    scale.save_state(state_path, state)
    return rs


def run_models(state, state_path, key, config, representations) -> Dict:
    """The pipeline up to the Pusher once per representation, then `semids serve` on what it
    pushed."""
    import dataclasses

    from serving.testing import newest_pushed_model
    rs = state["runs"][key]
    models_state = rs.setdefault("models", {})
    rows = None
    for rep in representations:
        ms = models_state.setdefault(rep, {})
        if ms.get("served") is not None:
            print(f"[{key}] {rep}: done earlier (served={ms['served']})", flush=True)
            continue
        rep_config = dataclasses.replace(config, representation=rep)
        path = write_config(rep_config, f"config-{rep}")
        before = newest_pushed_model(rep_config.serving_model_dir)
        if not run_stages(rs, key, rep_config, path, (MODEL_STAGE,), state_path, state,
                          label=f"{rep}:"):
            ms.update(served=False, error="pipeline failed")
            scale.save_state(state_path, state)
            continue
        comps = rs["stages"][f"{rep}:{MODEL_STAGE}"]["components"]
        pushed = newest_pushed_model(rep_config.serving_model_dir)
        ms.update({f"{c.lower()}_s": comps.get(c, {}).get("wall_s")
                   for c in ("Transform", "Trainer", "Evaluator", "Pusher")})
        ms["trainer_peak_rss_gib"] = comps.get("Trainer", {}).get("peak_rss_gib")
        if pushed is None or pushed == before:
            ms.update(served=False, error="no new pushed version (not blessed?)")
            scale.save_state(state_path, state)
            continue
        ms["model_dir"] = os.path.relpath(pushed, REPO_ROOT)
        ms["model_mib"] = round(folder_bytes(pushed) / (1 << 20), 1)
        rows = rows or probe_rows(rep_config.prepared_data_dir, rep_config.history_length)
        print(f"[{key}] {rep}: pushed {ms['model_mib']:,.1f} MiB; serving it", flush=True)
        try:
            ms.update(serve_and_ask(pushed, rows))
        except Exception as e:  # noqa: BLE001  (recorded, and the next representation runs)
            ms.update(served=False, error=repr(e)[:500])
        print(f"[{key}] {rep}: served={ms['served']} {ms.get('predictions')}", flush=True)
        scale.save_state(state_path, state)
    return rs


def analyse(state: Dict, catalog_key: str, small_key: str, fast_key: str,
            num_items: int) -> Dict:
    runs = state["runs"]
    cat, small, fast = runs.get(catalog_key, {}), runs.get(small_key, {}), runs.get(fast_key, {})
    out: Dict = {"catalog_items": num_items, "text_tokens": cat.get("text_tokens"),
                 "rqvae": cat.get("rqvae"),
                 "item_side_components": list(ITEM_SIDE)}
    suffix = f"{num_items // 1000}k"
    out[f"item_side_seconds_{suffix}"] = cat.get("item_side_s")
    out[f"item_side_peak_rss_gib_{suffix}"] = cat.get("item_side_peak_rss_gib")
    comps = {}
    for stage in ITEM_STAGES:
        comps.update(cat.get("stages", {}).get(stage, {}).get("components", {}))
    out["item_side_by_component"] = {c: comps.get(c) for c in ITEM_SIDE}
    if cat.get("item_side_s") and small.get("item_side_s"):
        out["item_side_with_rqvae_sizes"] = [small["num_items"], cat["num_items"]]
        out["item_side_with_rqvae_wall_s"] = [small["item_side_s"], cat["item_side_s"]]
        out["item_side_with_rqvae_exponent"] = scale._round(scale.loglog_slope(
            out["item_side_with_rqvae_sizes"], out["item_side_with_rqvae_wall_s"]))
    embedder = cat.get("stages", {}).get("ContentEmbedder", {}).get("components", {}).get(
        "ContentEmbedder")
    if embedder:
        out["encoder_items_per_s"] = round(num_items / embedder["wall_s"], 1)
    fast_comp = fast.get("stages", {}).get("ContentEmbedder", {}).get("components", {}).get(
        "ContentEmbedder")
    if fast_comp and fast.get("num_items"):
        out["fast_path_items"] = fast["num_items"]
        out["fast_path_items_per_s"] = round(fast["num_items"] / fast_comp["wall_s"], 1)
        if out.get("encoder_items_per_s"):
            out["fast_path_ratio_vs_encoder"] = round(
                out["fast_path_items_per_s"] / out["encoder_items_per_s"], 1)
    models_state = cat.get("models", {})
    out["models"] = models_state
    dense, others = models_state.get(features.DENSE_CONTENT, {}), [
        m for r, m in models_state.items() if r != features.DENSE_CONTENT and m.get("model_mib")]
    if dense.get("model_mib") and others:
        table_mib = 4.0 * num_items * EMBEDDING_DIM / (1 << 20)
        largest = max(m["model_mib"] for m in others)
        out["dense_content_table_mib"] = round(table_mib, 1)
        out["dense_content_model_limit_mib"] = round(TARGET_MODEL_RATIO * table_mib + largest, 1)
    base = models_state.get(features.RANDOM_HASH, {})
    if dense.get("trainer_peak_rss_gib") and base.get("trainer_peak_rss_gib"):
        out["dense_content_trainer_extra_gib"] = round(
            dense["trainer_peak_rss_gib"] - base["trainer_peak_rss_gib"], 3)
    out["served"] = {r: m.get("served") for r, m in models_state.items()}
    return out


def checks(results: Dict, num_items: int, representations) -> List[Tuple[str, Optional[bool]]]:
    suffix = f"{num_items // 1000}k"
    s, peak = results.get(f"item_side_seconds_{suffix}"), results.get(
        f"item_side_peak_rss_gib_{suffix}")
    dense = results.get("models", {}).get(features.DENSE_CONTENT, {})
    served = results.get("served", {})
    return [
        (f"item side {s} s < {TARGET_ITEM_SIDE_S:.0f} s", None if s is None
         else s < TARGET_ITEM_SIDE_S),
        (f"item side peak {peak} GiB < {TARGET_PEAK_GIB}", None if peak is None
         else peak < TARGET_PEAK_GIB),
        (f"dense_content model {dense.get('model_mib')} MiB <= "
         f"{results.get('dense_content_model_limit_mib')} MiB",
         None if not results.get("dense_content_model_limit_mib")
         else dense["model_mib"] <= results["dense_content_model_limit_mib"]),
        (f"dense_content Trainer peak {results.get('dense_content_trainer_extra_gib')} GiB above "
         f"random_hash's <= {TARGET_TRAINER_EXTRA_GIB}",
         None if results.get("dense_content_trainer_extra_gib") is None
         else results["dense_content_trainer_extra_gib"] <= TARGET_TRAINER_EXTRA_GIB),
        (f"served: {served}", None if len(served) < len(representations)
         else all(served.get(r) for r in representations)),
    ]


def merge_results(out_dir: str, results: Dict, num_items: int) -> None:
    """Adds this benchmark's headline keys to <out>/results.json, keeping every other key."""
    path = os.path.join(out_dir, "results.json")
    merged = {}
    if os.path.exists(path):
        with open(path) as f:
            merged = json.load(f)
    suffix = f"{num_items // 1000}k"
    for key in (f"item_side_seconds_{suffix}", f"item_side_peak_rss_gib_{suffix}",
                "item_side_with_rqvae_exponent", "fast_path_items_per_s"):
        if results.get(key) is not None:
            merged[key] = results[key]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=270_000)
    parser.add_argument("--small_items", type=int, default=27_000,
                        help="the second point of item_side_with_rqvae_exponent")
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--fast_path_items", type=int, default=50_000)
    parser.add_argument("--table_budget", type=int, default=16_384)
    parser.add_argument("--representations", nargs="*", default=list(features.REPRESENTATIONS))
    parser.add_argument("--only", nargs="*", choices=("catalog", "small", "fast_path", "models"),
                        default=None, help="parts to run (default all, in that order)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--work_dir", default=DEFAULT_WORK)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work_dir, exist_ok=True)
    state_path = os.path.join(args.work_dir, "state.json")
    state = scale.load_state(state_path)
    cat_key = f"catalog-{args.items}"
    small_key = f"items-{args.small_items}"
    fast_key = f"fast-path-{args.fast_path_items}"
    parts = args.only or ["catalog", "small", "fast_path", "models"]
    cat_config = run_config(cat_key, args.work_dir, args.items, args.interactions,
                            args.table_budget)
    if not args.report_only:
        state["machine"] = dict(scale.machine_description(),
                                command="benchmarks/catalog.py " + " ".join(argv or sys.argv[1:]))
        if "catalog" in parts:
            run_item_side(state, state_path, cat_key, cat_config)
        if "small" in parts:
            run_item_side(state, state_path, small_key, run_config(
                small_key, args.work_dir, args.small_items, args.interactions, args.table_budget))
        if "fast_path" in parts:
            data_dir = write_fast_path_data(os.path.join(args.work_dir, fast_key, "data"),
                                            args.fast_path_items)
            config = run_config(fast_key, args.work_dir, args.fast_path_items, 0,
                                args.table_budget, data_dir=data_dir)
            rs = state["runs"].setdefault(fast_key, {"stages": {}})
            rs["num_items"] = args.fast_path_items
            rs["finished"] = run_stages(rs, fast_key, config, write_config(config, "config"),
                                        ("ItemExampleGen", "ContentEmbedder"), state_path, state)
            scale.save_state(state_path, state)
        if "models" in parts:
            if not state["runs"].get(cat_key, {}).get("finished"):
                print(f"[{cat_key}] the item side has not finished: run it first", flush=True)
            else:
                run_models(state, state_path, cat_key, cat_config, args.representations)
        state["machine"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        scale.save_state(state_path, state)

    results = analyse(state, cat_key, small_key, fast_key, args.items)
    results["machine"] = state.get("machine")
    with open(os.path.join(args.out, "catalog.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    merge_results(args.out, results, args.items)
    for name, ok in checks(results, args.items, args.representations):
        print(f"{'PASS' if ok else 'not measured' if ok is None else 'FAIL'}: {name}")
    suffix = f"{args.items // 1000}k"
    for key in (f"item_side_seconds_{suffix}", f"item_side_peak_rss_gib_{suffix}",
                "item_side_with_rqvae_exponent", "encoder_items_per_s", "fast_path_items_per_s",
                "fast_path_ratio_vs_encoder"):
        print(f"{key}={results.get(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
