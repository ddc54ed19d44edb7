"""How the pipeline's cost grows with catalog and log size: wall seconds and peak memory per
component, scaling exponents, and the multi-process speed-up.

    .venv/bin/python benchmarks/scale.py                 # all runs, resuming finished stages
    .venv/bin/python benchmarks/scale.py --report-only   # rewrite docs/perf from the state file
    .venv/bin/python benchmarks/scale.py --items 1000 2000 --interactions 10000 20000 \\
        --multiprocess_interactions 20000 --out /tmp/perf   # a quick smoke run

Runs (each its own TFX pipeline, synthetic data from data/synthetic.py, DirectRunner in memory
unless said otherwise):
  items-<N>            N items (10k, 100k, 1M), 200k interactions, up to SemanticIdGen:
                       the item side (ContentEmbedder: MiniLM int8 ONNX; SemanticIdGen: RQ-VAE
                       inference + collision breaker + catalog + report; RqVaeTrainer for
                       reference, a fixed 2 epochs)
  interactions-<M>     10k items, M interactions (200k, 2M), up to the ranking Trainer (one
                       epoch): ExampleGen, InteractionFeatures, Transform, training
  interactions-<M>-multiprocess   the same up to Transform with DirectRunner
                       --direct_running_mode=multi_processing --direct_num_workers=2

Each run is split into stages; a stage is one subprocess running the pipeline up to one
component (a TFX partial run, RunOptions(to_nodes=[component]), with LocalDagRunner and the
cache on), so every earlier component is a cache hit and each
component runs in a fresh process, as it would in its own container on Vertex. While a stage
runs, the parent samples the resident memory of the whole process tree (multi-process workers
included; pages shared between processes count once per process) every 0.5 s. A component's wall
seconds and window come from its MLMD execution (created when it starts, updated when it
finishes); its peak memory is the largest sample in that window. Finished stages are kept in
<out>/state.json, so an interrupted benchmark resumes stage by stage. A run whose components
together pass --max_run_minutes (60) is stopped and reported as not finishing.

Writes <out>/results.json (item_side_exponent, interaction_side_exponent, peak_rss_gib_1m_items,
multiprocess_speedup, ...), <out>/report.md and <out>/scaling.png; <out> defaults to docs/perf.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
import models  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow: models/__init__.py)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_OUT = os.path.join(REPO_ROOT, "docs", "perf")
DEFAULT_WORK = os.path.join(REPO_ROOT, "outputs", "scale")
DEFAULT_ITEMS = (10_000, 100_000, 1_000_000)
DEFAULT_INTERACTIONS = (200_000, 2_000_000)
ITEM_SWEEP_INTERACTIONS = 200_000
INTERACTION_SWEEP_ITEMS = 10_000
INTERACTIONS_PER_USER = 50
GIB = float(1 << 30)

# Components timed for each side (MLMD node ids).
ITEM_SIDE = ("ContentEmbedder", "SemanticIdGen")
INTERACTION_SIDE = ("InteractionExampleGen", "InteractionFeatures", "Transform", "Trainer")
MULTIPROCESS_STEPS = ("InteractionExampleGen", "InteractionFeatures", "Transform")
# Stages: each runs the pipeline up to (and including) this component.
ITEM_STAGES = ("ItemExampleGen", "ContentEmbedder", "RqVaeTrainer", "SemanticIdGen")
INTERACTION_STAGES = ("SemanticIdGen", "InteractionExampleGen", "InteractionFeatures",
                      "StrictExampleValidator", "SpmTrainer", "Transform", "Trainer")
MULTIPROCESS_STAGES = INTERACTION_STAGES[:-1]

TARGET_EXPONENT = 1.1
TARGET_PEAK_GIB = 4.0
TARGET_SPEEDUP = 1.5
MAX_RUN_MINUTES = 60.0


@dataclasses.dataclass
class Run:
    key: str
    kind: str  # items | interactions | multiprocess
    num_items: int
    num_interactions: int
    stages: Tuple[str, ...]
    runner: str = "direct"


def plan_runs(items: Sequence[int], interactions: Sequence[int],
              multiprocess_interactions: Optional[int]) -> List[Run]:
    """Item runs up to 100k items, then the interaction runs, then the larger item runs: the
    cheaper figures land first when a sitting ends early."""
    item_runs = [Run(f"items-{n}", "items", n, ITEM_SWEEP_INTERACTIONS, ITEM_STAGES)
                 for n in items]
    runs = [r for r in item_runs if r.num_items <= 100_000]
    for m in interactions:
        runs.append(Run(f"interactions-{m}", "interactions", INTERACTION_SWEEP_ITEMS, m,
                        INTERACTION_STAGES))
        if m == multiprocess_interactions:  # right after its in-memory twin, same sitting
            runs.append(Run(f"interactions-{m}-multiprocess", "multiprocess",
                            INTERACTION_SWEEP_ITEMS, m, MULTIPROCESS_STAGES,
                            runner="direct_multiprocess"))
    return runs + [r for r in item_runs if r.num_items > 100_000]


def run_config(run: Run, work_dir: str, synthetic_text: str = "realistic"):
    """The RunConfig of a benchmark run: one model for every size (L=4 x K=256, D=64), a fixed
    2 RQ-VAE epochs and one ranking epoch, so that only the data size changes. Item texts are
    catalog-length by default (data/synthetic.py, text_mode "realistic")."""
    from pipeline.config import RunConfig
    return RunConfig(
        pipeline_name=f"scale-{run.key}", dataset="synthetic", synthetic_text=synthetic_text,
        output_dir=os.path.join(work_dir, run.key), results_dir=os.path.join(work_dir, run.key,
                                                                              "results"),
        synthetic_num_items=run.num_items, synthetic_num_interactions=run.num_interactions,
        synthetic_num_users=max(100, run.num_interactions // INTERACTIONS_PER_USER),
        rqvae_num_levels=4, rqvae_codebook_size=256, rqvae_latent_dim=64, rqvae_epochs=2,
        rqvae_batch_size=1024,
        history_length=20, item_table_size=4096, table_budgets=(4096,),
        max_epochs=1, early_stopping_patience=1, batch_size=1024,
        min_auc=0.0, auc_regression_tolerance=1.0,
        runner=run.runner, direct_num_workers=2)


# --- one stage, in a subprocess ----------------------------------------------------------------

def run_stage(config_path: str, until: str) -> None:
    """The pipeline up to `until` (its ancestors and itself): a TFX partial run (RunOptions
    to_nodes) with LocalDagRunner, cache on, so the ancestors that ran before are cache hits."""
    from absl import logging
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from pipeline.config import RunConfig
    from pipeline.inputs import prepare_inputs
    from pipeline.pipeline import create_pipeline

    logging.set_verbosity(logging.INFO)
    config = RunConfig.from_file(config_path)
    pipeline = create_pipeline(config, prepare_inputs(config))
    ids = sorted(c.id for c in pipeline.components)
    if until not in ids:
        raise ValueError(f"no component {until!r} in the pipeline ({ids})")
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=RunOptions(to_nodes=[until]))


# --- measuring a stage from the parent ---------------------------------------------------------

class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval_s`."""

    def __init__(self, pid: int, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.samples: List[Tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self):
        import psutil
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.samples.append((time.time(), total))
            self._halt.wait(self.interval_s)

    def stop(self):
        self._halt.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        inside = [rss for t, rss in self.samples if start - 0.5 <= t <= end + 0.5]
        return max(inside) if inside else 0


def executed_components(metadata_path: str, since: float) -> Dict[str, Tuple[float, float]]:
    """{node id: (start, end) epoch seconds} of the executions that ran (not cached) and
    completed after `since`."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.mlmd import component_ids, open_store

    store = open_store(metadata_path)
    executions = [e for e in store.get_executions()
                  if e.last_known_state == metadata_store_pb2.Execution.COMPLETE
                  and e.create_time_since_epoch / 1000.0 >= since - 1.0]
    nodes = component_ids(store, executions)
    return {nodes[e.id]: (e.create_time_since_epoch / 1000.0,
                          e.last_update_time_since_epoch / 1000.0)
            for e in executions if e.id in nodes}


def _echo_progress(stream, log_file, prefix: str):
    """Copies the stage's output to its log; echoes the progress lines."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        log_file.write(line)
        if "rows/s" in line:
            print(f"{prefix} {line.rstrip()[-200:]}", flush=True)


def measure_stage(config_path: str, metadata_path: str, until: str, log_path: str,
                  timeout_s: float, prefix: str) -> Dict:
    """Runs one stage; returns {"components": {id: {wall_s, peak_rss_gib, start, end}},
    "stage_wall_s", "returncode", "timed_out"}."""
    started = time.time()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log_path, "a") as log_file:
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--_stage", config_path, until],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        sampler = TreeMemorySampler(proc.pid)
        sampler.start()
        echo = threading.Thread(target=_echo_progress, args=(proc.stdout, log_file, prefix),
                                daemon=True)
        echo.start()
        timed_out = False
        try:
            proc.wait(timeout=max(1.0, timeout_s))
        except subprocess.TimeoutExpired:
            timed_out = True
            import psutil
            for p in psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            proc.wait()
        sampler.stop()
        echo.join(timeout=10)
    components = {}
    if os.path.exists(metadata_path):
        for node, (start, end) in executed_components(metadata_path, started).items():
            components[node] = {"wall_s": round(end - start, 2),
                                "peak_rss_gib": round(sampler.peak(start, end) / GIB, 3)}
    return {"components": components, "stage_wall_s": round(time.time() - started, 1),
            "stage_peak_rss_gib": round(max((r for _, r in sampler.samples), default=0) / GIB, 3),
            "returncode": proc.returncode, "timed_out": timed_out}


def print_components(key: str, result: Dict) -> None:
    """One line per component a stage ran: wall seconds and peak memory."""
    for comp, c in result["components"].items():
        print(f"[{key}] {comp}: {c['wall_s']:,.1f} s, peak {c['peak_rss_gib']:.2f} GiB",
              flush=True)


def print_failure(key: str, stage: str, result: Dict, log_path: str) -> None:
    """The last 40 lines of a failed stage's log and what failed."""
    with open(log_path, errors="replace") as f:
        tail = f.readlines()[-40:]
    print("".join(tail) + f"[{key}] stage {stage} failed (rc {result['returncode']}"
          f"{', timed out' if result['timed_out'] else ''}); see {log_path}", flush=True)


# --- state, analysis and report ------------------------------------------------------------------

def load_state(path: str) -> Dict:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": {}}


def save_state(path: str, state: Dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def component_table(run_state: Dict) -> Dict[str, Dict]:
    out: Dict[str, Dict] = {}
    for stage in run_state.get("stages", {}).values():
        out.update(stage.get("components", {}))
    return out


def run_total_s(run_state: Dict) -> float:
    return sum(c["wall_s"] for c in component_table(run_state).values())


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Least-squares slope of log(y) on log(x); None with fewer than two points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def _finished(run_state: Optional[Dict]) -> bool:
    return bool(run_state) and run_state.get("status") == "finished"


def side_series(state: Dict, runs: Sequence[Run], kind: str, components: Sequence[str]
                ) -> Tuple[List[int], List[float], Dict[str, List[float]]]:
    """(sizes, summed wall seconds, {component: wall seconds}) over the finished runs of a kind."""
    sizes, totals, per = [], [], {c: [] for c in components}
    for run in runs:
        if run.kind != kind or not _finished(state["runs"].get(run.key)):
            continue
        table = component_table(state["runs"][run.key])
        if not all(c in table for c in components):
            continue
        sizes.append(run.num_items if kind == "items" else run.num_interactions)
        totals.append(sum(table[c]["wall_s"] for c in components))
        for c in components:
            per[c].append(table[c]["wall_s"])
    return sizes, totals, per


def analyse(state: Dict, runs: Sequence[Run], max_run_minutes: float) -> Dict:
    item_sizes, item_totals, item_per = side_series(state, runs, "items", ITEM_SIDE)
    int_sizes, int_totals, int_per = side_series(state, runs, "interactions", INTERACTION_SIDE)
    results: Dict = {
        "item_side_components": list(ITEM_SIDE),
        "interaction_side_components": list(INTERACTION_SIDE),
        "item_side_sizes": item_sizes, "item_side_wall_s": item_totals,
        "interaction_side_sizes": int_sizes, "interaction_side_wall_s": int_totals,
        "item_side_exponent": _round(loglog_slope(item_sizes, item_totals)),
        "interaction_side_exponent": _round(loglog_slope(int_sizes, int_totals)),
        "component_exponents": {
            **{c: _round(loglog_slope(item_sizes, v)) for c, v in item_per.items()},
            **{c: _round(loglog_slope(int_sizes, v)) for c, v in int_per.items()}},
    }
    # Peak memory of the item side at 1M items (the largest item run if 1M did not finish).
    item_runs = [r for r in runs if r.kind == "items" and _finished(state["runs"].get(r.key))]
    if item_runs:
        biggest = max(item_runs, key=lambda r: r.num_items)
        table = component_table(state["runs"][biggest.key])
        results["peak_rss_items"] = biggest.num_items
        results["peak_rss_gib_by_component"] = {c: table[c]["peak_rss_gib"]
                                                for c in ITEM_SIDE if c in table}
        peak = max(results["peak_rss_gib_by_component"].values(), default=None)
        results["peak_rss_gib_item_side"] = peak
        results["peak_rss_gib_1m_items"] = peak if biggest.num_items == 1_000_000 else None
        results["peak_rss_runner"] = "DirectRunner in_memory"
    else:
        results["peak_rss_gib_1m_items"] = None
    # Multi-process speed-up on the Python-bound interaction steps.
    results["multiprocess_speedup"] = None
    for run in runs:
        if run.kind != "multiprocess":
            continue
        twin = state["runs"].get(run.key.replace("-multiprocess", ""))
        mine = state["runs"].get(run.key)
        if not (_finished(twin) and _finished(mine)):
            continue
        a, b = component_table(twin), component_table(mine)
        steps = [s for s in MULTIPROCESS_STEPS if s in a and s in b]
        in_memory = sum(a[s]["wall_s"] for s in steps)
        multi = sum(b[s]["wall_s"] for s in steps)
        results["multiprocess_interactions"] = run.num_interactions
        results["multiprocess_speedup"] = _round(in_memory / multi) if multi else None
        results["multiprocess_speedup_by_component"] = {
            s: _round(a[s]["wall_s"] / b[s]["wall_s"]) for s in steps if b[s]["wall_s"]}
        results["multiprocess_wall_s"] = {s: [a[s]["wall_s"], b[s]["wall_s"]] for s in steps}
        results["multiprocess_peak_rss_gib"] = {s: [a[s]["peak_rss_gib"], b[s]["peak_rss_gib"]]
                                                for s in steps}
    # The largest sizes that finish within the limit.
    limit_s = max_run_minutes * 60
    within = {"items": None, "interactions": None}
    for run in runs:
        rs = state["runs"].get(run.key)
        if run.kind in within and _finished(rs) and run_total_s(rs) <= limit_s:
            size = run.num_items if run.kind == "items" else run.num_interactions
            within[run.kind] = max(within[run.kind] or 0, size)
    results["largest_items_within_60_min"] = within["items"]
    results["largest_interactions_within_60_min"] = within["interactions"]
    results["runs"] = {
        key: {"status": rs.get("status"), "total_wall_s": round(run_total_s(rs), 1),
              "components": component_table(rs),
              "num_items": rs.get("num_items"), "num_interactions": rs.get("num_interactions"),
              "runner": rs.get("runner"), "synthetic_text": rs.get("synthetic_text", "short"),
              "text_tokens": rs.get("text_tokens")}
        for key, rs in state["runs"].items()}
    results["targets"] = {"exponent_max": TARGET_EXPONENT, "peak_rss_gib_max": TARGET_PEAK_GIB,
                          "multiprocess_speedup_min": TARGET_SPEEDUP}
    results["machine"] = state.get("machine", {})
    return results


def _round(x: Optional[float], nd: int = 3) -> Optional[float]:
    return None if x is None else round(float(x), nd)


def plot(results: Dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    runs = results["runs"]
    panels = (("items", "items in the catalog", ITEM_SIDE + ("RqVaeTrainer", "ItemExampleGen")),
              ("interactions", "interactions", INTERACTION_SIDE + ("SpmTrainer", "StatisticsGen")))
    for ax, (kind, xlabel, comps) in zip(axes[:2], panels):
        for comp in comps:
            pts = sorted((r["num_items"] if kind == "items" else r["num_interactions"],
                          r["components"][comp]["wall_s"])
                         for key, r in runs.items()
                         if key.startswith(kind + "-") and not key.endswith("multiprocess")
                         and r["status"] == "finished" and comp in r["components"])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=comp)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("wall seconds")
        exp = results[f"{'item' if kind == 'items' else 'interaction'}_side_exponent"]
        ax.set_title(f"{kind} side: exponent {exp}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for key, r in sorted(runs.items()):
        if r["status"] != "finished":
            continue
        comps = list(r["components"])
        ax.scatter([key] * len(comps), [r["components"][c]["peak_rss_gib"] for c in comps], s=12)
    ax.axhline(TARGET_PEAK_GIB, color="red", linestyle="--", linewidth=1, label="4 GiB target")
    ax.set_ylabel("peak RSS of the process tree (GiB)")
    ax.set_title("peak memory per component, per run")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _check(value, ok: bool) -> str:
    return "not measured" if value is None else ("meets the target" if ok else "MISSES the target")


def token_length_quantiles(items_csv: str) -> Dict[str, float]:
    """MiniLM token counts of items.csv's texts (title, year, genres joined as ContentEmbedder
    joins them; [CLS] and [SEP] included, no truncation): p50, p90, p99, max and mean."""
    import csv as csv_lib

    import numpy as np
    from tokenizers import Tokenizer

    from data.synthetic import ITEM_TEXT_FIELDS
    from models import content_encoder
    tokenizer = Tokenizer.from_file(
        content_encoder.default_encoder_sources()[content_encoder.TOKENIZER_FILE])
    tokenizer.no_padding()
    tokenizer.no_truncation()
    counts: List[int] = []
    with open(items_csv, newline="", encoding="utf-8") as f:
        batch: List[str] = []
        for row in csv_lib.DictReader(f):
            batch.append(" ".join(row[c] for c in ITEM_TEXT_FIELDS if row.get(c)))
            if len(batch) == 10_000:
                counts += [len(e.ids) for e in tokenizer.encode_batch(batch)]
                batch = []
        counts += [len(e.ids) for e in tokenizer.encode_batch(batch)] if batch else []
    a = np.array(counts)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": int(a.max()),
            "mean": round(float(a.mean()), 1), "items": int(a.size)}


def report_markdown(results: Dict, notes: str = "") -> str:
    lines = ["# Scaling report (benchmarks/scale.py)", "",
             f"Machine: {results['machine'].get('description', '?')}. "
             f"Generated {results['machine'].get('finished', '?')} from "
             f"`{results['machine'].get('command', 'benchmarks/scale.py')}`"
             + "".join(f", then `{c}`" for c in results["machine"].get("reruns", [])) + ".", "",
             "## Headline figures", "",
             "| figure | value | target | |", "|---|---|---|---|"]
    ie, xe = results["item_side_exponent"], results["interaction_side_exponent"]
    pk, sp = results["peak_rss_gib_1m_items"], results["multiprocess_speedup"]
    lines += [
        f"| item-side exponent ({' + '.join(ITEM_SIDE)}, {results['item_side_sizes']} items) "
        f"| {ie} | <= {TARGET_EXPONENT} | {_check(ie, ie is not None and ie <= TARGET_EXPONENT)} |",
        f"| interaction-side exponent ({' + '.join(INTERACTION_SIDE)}, "
        f"{results['interaction_side_sizes']} interactions) | {xe} | <= {TARGET_EXPONENT} | "
        f"{_check(xe, xe is not None and xe <= TARGET_EXPONENT)} |",
        f"| peak RSS, item side at 1M items (DirectRunner in memory) | {pk} GiB | < "
        f"{TARGET_PEAK_GIB} GiB | {_check(pk, pk is not None and pk < TARGET_PEAK_GIB)} |",
        f"| multi-process speed-up ({' + '.join(MULTIPROCESS_STEPS)} at "
        f"{results.get('multiprocess_interactions', '?')} interactions, 2 workers) | {sp} | >= "
        f"{TARGET_SPEEDUP} | {_check(sp, sp is not None and sp >= TARGET_SPEEDUP)} |",
        f"| largest catalog finishing within 60 min (of the sizes tried) | "
        f"{results['largest_items_within_60_min']} "
        f"items | | |",
        f"| largest log finishing within 60 min (of the sizes tried) | "
        f"{results['largest_interactions_within_60_min']} interactions | | |",
        "", "Per-component exponents: " + ", ".join(
            f"{c} {v}" for c, v in results["component_exponents"].items()), ""]
    if results.get("multiprocess_speedup_by_component"):
        lines += ["Multi-process speed-up by step (in-memory s / multi-process s): " + ", ".join(
            f"{s} {v} ({results['multiprocess_wall_s'][s][0]} / "
            f"{results['multiprocess_wall_s'][s][1]})"
            for s, v in results["multiprocess_speedup_by_component"].items()), ""]
    lines += ["## Every run", "",
              "Wall seconds and peak resident memory (GiB, whole process tree) of each component "
              "that ran (cache hits excluded).", ""]
    for key, r in results["runs"].items():
        lines += [f"### {key} ({r['num_items']:,} items, {r['num_interactions']:,} interactions, "
                  f"{r['runner']}): {r['status']}, {r['total_wall_s']:,.0f} s in components", ""]
        tokens = r.get("text_tokens")
        lines += [f"Item texts: {r.get('synthetic_text', 'short')}" + (
            f"; MiniLM tokens per item p50 {tokens['p50']:.0f}, p90 {tokens['p90']:.0f}, p99 "
            f"{tokens['p99']:.0f}, max {tokens['max']}" if tokens else "") + ".", "",
                  "| component | wall s | peak RSS GiB |", "|---|---|---|"]
        for comp, c in r["components"].items():
            lines.append(f"| {comp} | {c['wall_s']:,.1f} | {c['peak_rss_gib']:.2f} |")
        lines.append("")
    lines += ["![scaling](scaling.png)", ""]
    if notes:
        lines += ["## Reading the figures", "", notes.strip(), ""]
    return "\n".join(lines)


NOTES_FILE = "notes.md"  # hand-written reading of the figures, kept next to the report


def write_outputs(state: Dict, runs: Sequence[Run], out_dir: str, max_run_minutes: float) -> Dict:
    results = analyse(state, runs, max_run_minutes)
    # Other benchmarks (encoder.py, rqvae.py, spm.py) add their keys to the same file: kept.
    path = os.path.join(out_dir, "results.json")
    previous = json.load(open(path)) if os.path.exists(path) else {}
    results = {**{k: v for k, v in previous.items() if k not in results}, **results}
    with open(path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    plot(results, os.path.join(out_dir, "scaling.png"))
    notes_path = os.path.join(out_dir, NOTES_FILE)
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(report_markdown(results, notes))
    return results


def machine_description() -> Dict:
    import psutil
    return {"description": f"{os.cpu_count()} cores, "
                           f"{psutil.virtual_memory().total / GIB:.0f} GiB RAM, "
                           f"{platform.platform()}, Python {platform.python_version()}",
            "cpus": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="*", default=list(DEFAULT_ITEMS))
    parser.add_argument("--interactions", type=int, nargs="*", default=list(DEFAULT_INTERACTIONS))
    parser.add_argument("--multiprocess_interactions", type=int, default=2_000_000,
                        help="the interaction size also run with the multi-process runner")
    parser.add_argument("--only", nargs="*", default=None, help="run keys to run (default all)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--work_dir", default=DEFAULT_WORK)
    parser.add_argument("--max_run_minutes", type=float, default=MAX_RUN_MINUTES)
    parser.add_argument("--synthetic_text", default="realistic", choices=("short", "realistic"),
                        help="item texts of the synthetic catalogs (data/synthetic.py text modes)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--_stage", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._stage:
        run_stage(*args._stage)
        return 0

    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work_dir, exist_ok=True)
    state_path = os.path.join(args.out, "state.json")
    state = load_state(state_path)
    runs = plan_runs(args.items, args.interactions, args.multiprocess_interactions)
    if not args.report_only:
        command = "benchmarks/scale.py " + " ".join(argv or sys.argv[1:])
        if args.only and state.get("machine"):  # a partial rerun: keep the main run's record
            state["machine"].setdefault("reruns", []).append(command)
        else:
            state["machine"] = dict(machine_description(), command=command)
        for run in runs:
            if args.only and run.key not in args.only:
                continue
            rs = state["runs"].setdefault(run.key, {"stages": {}})
            if rs.get("synthetic_text", "short") != args.synthetic_text:
                rs.update(status=None, stages={}, text_tokens=None)  # other texts: measure anew
            rs.update(num_items=run.num_items, num_interactions=run.num_interactions,
                      runner=run.runner, kind=run.kind, synthetic_text=args.synthetic_text)
            if rs.get("status") in ("finished", "over_time_limit"):
                print(f"[{run.key}] {rs['status']} earlier: skipped", flush=True)
                continue
            config = run_config(run, args.work_dir, args.synthetic_text)
            os.makedirs(config.output_dir, exist_ok=True)
            config_path = os.path.join(config.output_dir, "config.json")
            with open(config_path, "w") as f:
                f.write(config.to_json())
            log_path = os.path.join(config.output_dir, "stages.log")
            rs["status"] = "running"
            for stage in run.stages:
                if stage in rs["stages"] and rs["stages"][stage]["returncode"] == 0:
                    continue
                left_s = args.max_run_minutes * 60 - run_total_s(rs)
                print(f"[{run.key}] stage up to {stage} (log {log_path})", flush=True)
                result = measure_stage(config_path, config.metadata_path, stage, log_path,
                                       timeout_s=left_s + 120, prefix=f"[{run.key}]")
                rs["stages"][stage] = result
                save_state(state_path, state)
                print_components(run.key, result)
                if result["timed_out"] or run_total_s(rs) > args.max_run_minutes * 60:
                    rs["status"] = "over_time_limit"
                    break
                if result["returncode"] != 0:
                    rs["status"] = "failed"
                    print_failure(run.key, stage, result, log_path)
                    break
            else:
                rs["status"] = "finished"
            items_csv = os.path.join(config.prepared_data_dir, "items.csv")
            if not rs.get("text_tokens") and os.path.isfile(items_csv):
                rs["text_tokens"] = token_length_quantiles(items_csv)
            save_state(state_path, state)
        state["machine"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        save_state(state_path, state)
    results = write_outputs(state, runs, args.out, args.max_run_minutes)
    for key in ("item_side_exponent", "interaction_side_exponent", "peak_rss_gib_1m_items",
                "multiprocess_speedup", "largest_items_within_60_min",
                "largest_interactions_within_60_min"):
        print(f"{key}={results.get(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
