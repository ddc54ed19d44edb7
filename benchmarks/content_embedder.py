"""ContentEmbedder's encoder step: Beam RunInference (today's executor) vs the hand-written
DoFn.setup + BatchElements path it replaced, throughput in items/s on DirectRunner.

    .venv/bin/python benchmarks/content_embedder.py            # ML-100K (1,682) + 100k synthetic
    .venv/bin/python benchmarks/content_embedder.py --quick    # ML-100K + 5k synthetic
    [--synthetic_items N] [--repeats 3] [--batch_size 64] [--out docs/perf/content_embedder.json]

Both paths run the same pipeline, in this process, on the same in-memory items (item text as
ContentEmbedder builds it: title, year, genres), with the default runner the pipeline uses
(DirectRunner in memory, Beam's defaults) and the same encoder (the default folder,
models.content_encoder.prepare_encoder_dir; onnxruntime's default threads):
    Create(items) -> <encoder step> -> LogProgress -> a sink (count, sum of the vectors; the
    vectors themselves up to --collect_max items, to compare the two paths item by item)
  runinference  components/content_embedder/executor.py EncodeItems: (item_id, text) ->
                RunInference(KeyedModelHandler(MiniLmModelHandler)) -> CheckEmbedding
  today         BatchElements(batch_size) -> _TodayEncodeBatch (the executor's former DoFn,
                copied below: encoder loaded in DoFn.setup, checked per item)
Reading the items split, ToExample and the writes are the same in both and are left out, so the
ratio is that of the step that changed. Each path first runs once on 200 items (not timed: the
first pipeline of a process pays one-off imports). Then, per repetition, the two paths run one
after the other, alternating which goes first, and the median of --repeats runs is reported
(the machine may be shared: interleaving keeps the two paths under the same load).

Prints each figure and runinference/today (items/s ratio; also the ratio of items per CPU
second of this process, which other processes on a shared machine disturb less); writes --out
(JSON). The executor keeps RunInference unless it costs more than 10% of today's throughput
(wall-clock ratio < 0.90 on a dataset: the "decision" field).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import models  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow: models/__init__.py)

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402

from components import progress  # noqa: E402
from components.content_embedder import core  # noqa: E402
from components.content_embedder.executor import EncodeItems, Item  # noqa: E402
from data.movielens import prepare_movielens  # noqa: E402
from data.synthetic import generate_synthetic  # noqa: E402
from models.content_encoder import MiniLmEncoder, default_num_threads  # noqa: E402
from models.content_encoder import prepare_encoder_dir  # noqa: E402
from schemas import features  # noqa: E402

TEXT_FIELDS = ("title", "year", "genres")
PATHS = ("today", "runinference")
WARMUP_ITEMS = 200
MAX_COST = 0.10  # RunInference may cost at most 10% of today's throughput
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "docs", "perf", "content_embedder.json")


# --- today's path (the executor before RunInference), kept as the baseline ------------------------

class _TodayEncodeBatch(beam.DoFn):
    """A batch of Items -> the same Items with their encoder embedding (checked).

    The encoder is loaded once per DoFn instance in setup() from a local encoder folder (the
    executor also copied a remote URI to a local temp folder first; not exercised here).
    """

    def __init__(self, encoder_uri: str, num_threads: Optional[int] = None):
        self._encoder_uri = encoder_uri
        self._num_threads = num_threads
        self._encoder = None

    def setup(self):
        self._encoder = MiniLmEncoder(self._encoder_uri, num_threads=self._num_threads)

    def process(self, batch: List[Item]):
        vectors = self._encoder.encode([item.text for item in batch])
        dim = self._encoder.embedding_dim or vectors.shape[1]
        for item, vec in zip(batch, vectors):
            yield item._replace(embedding=core.check_embedding(item.item_id, vec, dim))

    def teardown(self):
        self._encoder = None


class _TodayEncode(beam.PTransform):
    def __init__(self, encoder_uri: str, batch_size: int):
        super().__init__()
        self._encoder_uri = encoder_uri
        self._batch_size = batch_size

    def expand(self, items):
        return (items
                | "Batch" >> beam.BatchElements(min_batch_size=self._batch_size,
                                                max_batch_size=self._batch_size)
                | "EncodeBatch" >> beam.ParDo(_TodayEncodeBatch(self._encoder_uri)))


# --- the shared pipeline ------------------------------------------------------------------------

class _Sink(beam.CombineFn):
    """Items -> {count, sum of the vectors (float64), {item_id: vector} up to `collect_max`}."""

    def __init__(self, collect_max: int):
        self._collect_max = collect_max

    def create_accumulator(self):
        return [0, None, {}]

    def add_input(self, acc, item: Item):
        acc[0] += 1
        vec = np.asarray(item.embedding, np.float64)
        acc[1] = vec if acc[1] is None else acc[1] + vec
        if len(acc[2]) < self._collect_max:
            acc[2][item.item_id] = np.asarray(item.embedding, np.float32)
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for count, total, vectors in accumulators:
            merged[0] += count
            if total is not None:
                merged[1] = total if merged[1] is None else merged[1] + total
            merged[2].update(vectors)
        return merged

    def extract_output(self, acc):
        return acc


class _Save(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, acc):
        count, total, vectors = acc
        ids = sorted(vectors)
        np.savez(self._path, count=count, total=total, ids=np.array(ids, dtype=object),
                 vectors=np.stack([vectors[i] for i in ids]) if ids else np.zeros((0, 0)))


def run_path(path: str, items: List[Item], encoder_dir: str, batch_size: int, work_dir: str,
             collect_max: int) -> Dict:
    """One pipeline run of `path` over `items`: {"seconds", "cpu_seconds", "count", "total",
    "vectors"} (cpu_seconds: this process's CPU time, every thread; less sensitive than wall
    seconds to other processes on a shared machine)."""
    out = os.path.join(work_dir, f"{path}-{time.monotonic_ns()}.npz")
    step = (EncodeItems(encoder_dir, batch_size) if path == "runinference"
            else _TodayEncode(encoder_dir, batch_size))
    start, cpu_start = time.perf_counter(), time.process_time()
    with beam.Pipeline() as p:  # DirectRunner, Beam's defaults (the pipeline's runner=direct)
        _ = (p
             | "Create" >> beam.Create(items, reshuffle=False)
             | "Encode" >> step
             | "Progress" >> beam.ParDo(progress.LogProgress("ContentEmbedder", "items embedded"))
             | "Sink" >> beam.CombineGlobally(_Sink(collect_max))
             | "Save" >> beam.ParDo(_Save(out)))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    with np.load(out, allow_pickle=True) as z:
        result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "count": int(z["count"]), "total": z["total"],
                  "vectors": dict(zip(z["ids"].tolist(), z["vectors"]))}
    os.remove(out)
    if result["count"] != len(items):
        raise RuntimeError(f"{path}: {result['count']} items out of {len(items)}")
    return result


# --- data -----------------------------------------------------------------------------------------

def read_items(items_csv: str, limit: Optional[int] = None) -> List[Item]:
    """items.csv -> Items (item_id bytes, the text ContentEmbedder embeds, no embedding)."""
    items = []
    with open(items_csv, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            items.append(Item(row[features.ITEM_ID].encode("utf-8"),
                              core.item_text(row, TEXT_FIELDS), None))
            if limit and len(items) >= limit:
                break
    return items


def benchmark(name: str, items: List[Item], encoder_dir: str, batch_size: int, repeats: int,
              work_dir: str, collect_max: int) -> Dict:
    runs = {path: [] for path in PATHS}
    cpu_runs = {path: [] for path in PATHS}
    results = {}
    for rep in range(repeats):
        order = PATHS if rep % 2 == 0 else PATHS[::-1]
        for path in order:
            result = run_path(path, items, encoder_dir, batch_size, work_dir, collect_max)
            runs[path].append(result["seconds"])
            cpu_runs[path].append(result["cpu_seconds"])
            results[path] = result
            print(f"  {name} rep {rep + 1}/{repeats} {path:>12}: {result['seconds']:7.2f} s  "
                  f"{len(items) / result['seconds']:8.1f} items/s  "
                  f"(CPU {result['cpu_seconds']:7.2f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
    today, ri = results["today"], results["runinference"]
    common = sorted(set(today["vectors"]) & set(ri["vectors"]))
    max_diff = max((float(np.max(np.abs(today["vectors"][i] - ri["vectors"][i])))
                    for i in common), default=None)
    entry = {"items": len(items), "batch_size": batch_size, "repeats": repeats}
    for path in PATHS:
        median = statistics.median(runs[path])
        cpu_median = statistics.median(cpu_runs[path])
        entry[path] = {"runs_s": [round(s, 3) for s in runs[path]], "median_s": round(median, 3),
                       "items_per_s": round(len(items) / median, 1),
                       "cpu_runs_s": [round(s, 3) for s in cpu_runs[path]],
                       "median_cpu_s": round(cpu_median, 3),
                       "items_per_cpu_s": round(len(items) / cpu_median, 1)}
    entry["ratio_runinference_over_today"] = round(
        entry["runinference"]["items_per_s"] / entry["today"]["items_per_s"], 4)
    entry["ratio_runinference_over_today_cpu"] = round(
        entry["runinference"]["items_per_cpu_s"] / entry["today"]["items_per_cpu_s"], 4)
    entry["max_abs_diff_vectors"] = max_diff
    entry["items_compared"] = len(common)
    entry["max_abs_diff_vector_sum"] = float(np.max(np.abs(today["total"] - ri["total"])))
    return entry


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5,000 synthetic items instead of 100,000")
    parser.add_argument("--synthetic_items", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64,
                        help="texts per encoder call (RunConfig.embed_batch_size)")
    parser.add_argument("--collect_max", type=int, default=20_000,
                        help="compare the two paths' vectors item by item up to this many items")
    parser.add_argument("--data_dir", default=None,
                        help="where to write the ML-100K and synthetic items.csv (default: temp)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    num_synthetic = args.synthetic_items or (5_000 if args.quick else 100_000)

    with tempfile.TemporaryDirectory(prefix="bench_content_embedder_") as tmp:
        data_dir = args.data_dir or tmp
        encoder_dir = prepare_encoder_dir(os.path.join(tmp, "encoder"))
        ml100k = prepare_movielens(os.path.join(data_dir, "ml100k"))["paths"]["items"]
        synthetic = generate_synthetic(os.path.join(data_dir, f"synthetic-{num_synthetic}"),
                                       num_users=100, num_items=num_synthetic,
                                       num_interactions=1000, seed=0)["paths"]["items"]
        datasets = {"ml100k": read_items(ml100k),
                    f"synthetic_{num_synthetic}": read_items(synthetic)}
        print(f"encoder threads {default_num_threads()}, cpus {os.cpu_count()}, "
              f"batch_size {args.batch_size}, repeats {args.repeats}", flush=True)
        for path in PATHS:  # one-off imports and runner start-up, not timed
            run_path(path, datasets["ml100k"][:WARMUP_ITEMS], encoder_dir, args.batch_size, tmp,
                     0)
        results = {}
        for name, items in datasets.items():
            print(f"{name}: {len(items):,} items", flush=True)
            results[name] = benchmark(name, items, encoder_dir, args.batch_size, args.repeats,
                                      tmp, args.collect_max)
            report = make_report(args, results, complete=len(results) == len(datasets))
            write_report(report, args.out)  # after each dataset: a long run leaves its figures

    print()
    print(f"{'dataset':<18} {'items':>8} {'today items/s':>14} {'RunInference items/s':>21} "
          f"{'ratio':>7} {'ratio (CPU s)':>13} {'max |diff|':>11}")
    for name, r in results.items():
        diff = r["max_abs_diff_vectors"]
        print(f"{name:<18} {r['items']:>8,} {r['today']['items_per_s']:>14,.1f} "
              f"{r['runinference']['items_per_s']:>21,.1f} "
              f"{r['ratio_runinference_over_today']:>7.3f} "
              f"{r['ratio_runinference_over_today_cpu']:>13.3f} "
              f"{'n/a' if diff is None else f'{diff:.2e}':>11}")
    print(f"decision: {report['decision']}")
    print(f"wrote {args.out}")
    return report


def write_report(report: Dict, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


def make_report(args, results: Dict, complete: bool) -> Dict:
    report = {
        "what": "ContentEmbedder encoder step, items/s on DirectRunner (in memory, Beam's "
                "defaults): runinference = Beam RunInference + MiniLmModelHandler (the "
                "executor), today = DoFn.setup + BatchElements (the former executor); median of "
                "the repetitions, the two paths interleaved",
        "command": "benchmarks/content_embedder.py" + (" --quick" if args.quick else "")
                   + (f" --synthetic_items {args.synthetic_items}" if args.synthetic_items
                      else "") + (f" --repeats {args.repeats}" if args.repeats != 3 else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "encoder_threads": default_num_threads(),
                    "python": platform.python_version(), "beam": beam.__version__,
                    "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()]},
        "max_cost": MAX_COST,
        "complete": complete,
        "datasets": results,
    }
    worst = min(r["ratio_runinference_over_today"] for r in results.values())
    report["decision"] = ("runinference" if worst >= 1 - MAX_COST else
                          "today (RunInference costs more than 10% of today's throughput)")
    return report


if __name__ == "__main__":
    main()
