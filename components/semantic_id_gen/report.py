"""The SID report: how well the Semantic IDs use their codebooks and follow content.

Pure functions (numpy; matplotlib's Agg canvas for the figure; tf.io.gfile only in
`write_report`), tested without TFX or Beam.

sid_report.json keys (REPORT_KEYS):
  num_items, num_levels (L), codebook_size (K), embedding_dim, collision_breaker, sid_length
  utilization[l]          distinct codes used at level l / K
  perplexity[l]           exp(entropy, natural log) of the level-l code distribution (1 .. K)
  reconstruction_mse      mean of the RQ-VAE's per-item reconstruction_error (null if not finite)
  distinct_sids_before_breaker   distinct L-code tuples
  unique_sid_share        distinct_sids_before_breaker / num_items
  colliding_groups        L-code tuples shared by more than one item
  collisions_before_breaker      items in those groups
  largest_collision_group size of the largest such group (0 when there is no collision)
  duplicate_sids_after_breaker   items whose final semantic_id is shared with another item
                          (0 with the breaker; = collisions_before_breaker without it)
  max_breaker_code        largest collision-breaker code (0 without the breaker)
  hierarchy_cosine[n-1]   for n = 1..L: mean cosine similarity of the content embeddings over all
                          item pairs sharing at least their first n codes; null where no pair
                          does. hierarchy_pairs[n-1]: how many pairs that is.
  random_pair_cosine      mean cosine over all item pairs (random_pairs of them; null if N < 2)
  cosine_items            items the two cosine figures are computed over: all N up to
                          COSINE_MAX_ITEMS, else a seeded uniform sample of that many
  paper_hierarchy_cosine  Singh et al.'s figures for sharing 1..4 levels, for comparison
  samples                 seeded sample of level-1 codes and level-2 prefixes with some items

Cosines are exact over all pairs (of the sample, above COSINE_MAX_ITEMS items), in O(N * E) per
level: embeddings are normalised to unit length (a zero vector stays zero, i.e. cosine 0 with
everything), and within a group G the sum of pairwise cosines is (|sum_G u|^2 - sum_G |u|^2) / 2.
Groups are contiguous after one lexicographic sort of the codes, so every prefix length reuses
the same sorted array.
"""
from __future__ import annotations

import io
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from components.artifacts import SidReport
from schemas import features

PAPER_HIERARCHY_COSINE = (0.41, 0.68, 0.91, 0.97)  # Singh et al. 2024, sharing 1..4 levels
REPORT_SEED = 0
SAMPLE_PREFIXES = 4  # how many level-1 codes and level-2 prefixes the markdown shows
SAMPLE_ITEMS = 8  # items shown per sampled prefix

REPORT_KEYS = (
    "num_items", "num_levels", "codebook_size", "embedding_dim", "collision_breaker",
    "sid_length", "utilization", "perplexity", "reconstruction_mse",
    "distinct_sids_before_breaker", "unique_sid_share", "colliding_groups",
    "collisions_before_breaker", "largest_collision_group", "duplicate_sids_after_breaker",
    "max_breaker_code", "hierarchy_cosine", "hierarchy_pairs", "random_pair_cosine",
    "random_pairs", "paper_hierarchy_cosine", "samples", "cosine_items")
# Above this many items the cosine figures use a seeded sample of this many (the figures are
# means, so 100k items already pin them to ~3 decimals; all 1M x 384 floats would be 1.5 GB).
COSINE_MAX_ITEMS = 100_000


# --- codebook usage --------------------------------------------------------------------------

def _codes_2d(codes) -> np.ndarray:
    arr = np.asarray(codes, dtype=np.int64)
    if arr.ndim != 2:
        raise ValueError(f"codes must be [N, L], got shape {arr.shape}")
    return arr


def level_utilization(codes, codebook_size: int) -> List[float]:
    """Per level: distinct codes used / codebook_size."""
    arr = _codes_2d(codes)
    return [len(np.unique(arr[:, level])) / float(codebook_size) for level in range(arr.shape[1])]


def level_perplexity(codes) -> List[float]:
    """Per level: exp(entropy) of the code distribution (1 when one code takes every item,
    K when all K codes are used equally)."""
    arr = _codes_2d(codes)
    out = []
    for level in range(arr.shape[1]):
        _, counts = np.unique(arr[:, level], return_counts=True)
        if counts.size == 0:
            out.append(0.0)
            continue
        p = counts / counts.sum()
        out.append(float(np.exp(-np.sum(p * np.log(p)))))
    return out


def collision_stats(codes) -> Dict[str, Any]:
    """Collisions of the L-code SIDs (before the breaker)."""
    arr = _codes_2d(codes)
    n = arr.shape[0]
    if n == 0:
        return dict(distinct_sids_before_breaker=0, unique_sid_share=0.0, colliding_groups=0,
                    collisions_before_breaker=0, largest_collision_group=0)
    _, counts = np.unique(arr, axis=0, return_counts=True)
    shared = counts[counts > 1]
    return dict(
        distinct_sids_before_breaker=int(counts.size),
        unique_sid_share=float(counts.size) / n,
        colliding_groups=int(shared.size),
        collisions_before_breaker=int(shared.sum()),
        largest_collision_group=int(shared.max()) if shared.size else 0)


def duplicate_items(semantic_ids: Sequence[Sequence[int]]) -> int:
    """Items whose semantic_id is shared with at least one other item."""
    counts: Dict[Tuple[int, ...], int] = {}
    for sid in semantic_ids:
        key = tuple(int(c) for c in sid)
        counts[key] = counts.get(key, 0) + 1
    return int(sum(c for c in counts.values() if c > 1))


# --- content similarity along the hierarchy --------------------------------------------------

def unit_rows(embeddings) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); all-zero rows stay zero."""
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be [N, E], got shape {emb.shape}")
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))[:, None]
    return (emb / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def cosine_sample_rows(n: int, seed: int = REPORT_SEED, max_items: int = COSINE_MAX_ITEMS
                       ) -> Optional[np.ndarray]:
    """None (every row) for n <= max_items, else a sorted seeded sample of max_items rows."""
    if n <= max_items:
        return None
    return np.sort(np.random.default_rng([seed, n]).choice(n, size=max_items, replace=False))


def _group_pair_cosine(sorted_units: np.ndarray, sorted_sq: np.ndarray,
                       starts: np.ndarray) -> Tuple[float, int]:
    """(sum of pairwise cosines within groups, number of pairs) for contiguous groups."""
    n = sorted_units.shape[0]
    sizes = np.diff(np.append(starts, n))
    multi = sizes > 1
    if not multi.any():
        return 0.0, 0
    sums = np.add.reduceat(sorted_units, starts, axis=0, dtype=np.float64)[multi]
    sq = np.add.reduceat(sorted_sq, starts)[multi]
    pair_sum = float(np.sum((np.einsum("ij,ij->i", sums, sums) - sq) / 2.0))
    m = sizes[multi].astype(np.int64)
    return pair_sum, int(np.sum(m * (m - 1) // 2))


def hierarchy_cosine(codes, embeddings) -> Tuple[List[Optional[float]], List[int]]:
    """(mean cosine, pair count) per shared-prefix length n = 1..L, over all item pairs that
    share at least their first n codes; the mean is None where no pair does."""
    arr = _codes_2d(codes)
    units = unit_rows(embeddings)
    n, levels = arr.shape
    if units.shape[0] != n:
        raise ValueError(f"{n} code rows but {units.shape[0]} embeddings")
    if n == 0:
        return [None] * levels, [0] * levels
    order = np.lexsort(arr.T[::-1])  # lexicographic by (level 1, level 2, ...)
    sorted_codes = arr[order]
    sorted_units = units[order]
    sorted_sq = np.einsum("ij,ij->i", sorted_units, sorted_units, dtype=np.float64)
    means: List[Optional[float]] = []
    pairs: List[int] = []
    new_group = np.zeros(n, dtype=bool)
    new_group[0] = True
    for prefix in range(1, levels + 1):
        new_group[1:] |= sorted_codes[1:, prefix - 1] != sorted_codes[:-1, prefix - 1]
        total, count = _group_pair_cosine(sorted_units, sorted_sq, np.flatnonzero(new_group))
        means.append(total / count if count else None)
        pairs.append(count)
    return means, pairs


def random_pair_cosine(embeddings) -> Tuple[Optional[float], int]:
    """(mean cosine over all item pairs, number of pairs); None when there are < 2 items."""
    units = unit_rows(embeddings)
    n = units.shape[0]
    if n < 2:
        return None, 0
    total = units.sum(axis=0, dtype=np.float64)
    sq = float(np.einsum("ij,ij->", units, units, dtype=np.float64))
    pairs = n * (n - 1) // 2
    return float((total @ total - sq) / 2.0 / pairs), int(pairs)


# --- samples for a person ------------------------------------------------------------------

def _text(x) -> str:
    return x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)


def sample_prefixes(item_ids: Sequence[bytes], codes, semantic_ids: Sequence[Sequence[int]],
                    item_texts: Sequence[bytes], seed: int = REPORT_SEED,
                    num_prefixes: int = SAMPLE_PREFIXES, num_items: int = SAMPLE_ITEMS
                    ) -> Dict[str, List[Dict[str, Any]]]:
    """{"level_1": [...], "level_2": [...]}: seeded sample of up to num_prefixes prefixes of
    length 1 and 2 (preferring prefixes with more than one item), each with up to num_items of
    its items (seeded sample, listed by semantic_id): item_id, semantic_id_str, item_text."""
    arr = _codes_2d(codes)
    rng = np.random.default_rng(seed)
    out: Dict[str, List[Dict[str, Any]]] = {}
    for length in (1, 2):
        key = f"level_{length}"
        out[key] = []
        if arr.shape[1] < length or arr.shape[0] == 0:
            continue
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for row, prefix in enumerate(map(tuple, arr[:, :length].tolist())):
            groups.setdefault(prefix, []).append(row)
        keys = sorted(groups)
        multi = [k for k in keys if len(groups[k]) > 1]
        pool = multi or keys
        picked = sorted(pool[i] for i in rng.choice(len(pool), size=min(num_prefixes, len(pool)),
                                                     replace=False))
        for prefix in picked:
            rows = groups[prefix]
            chosen = sorted(rng.choice(rows, size=min(num_items, len(rows)), replace=False),
                            key=lambda r: (tuple(semantic_ids[r]), item_ids[r]))
            out[key].append({
                "prefix": features.SID_SEPARATOR.join(str(c) for c in prefix),
                "num_items": len(rows),
                "items": [{features.ITEM_ID: _text(item_ids[r]),
                           features.SEMANTIC_ID_STR: features.SID_SEPARATOR.join(
                               str(int(c)) for c in semantic_ids[r]),
                           features.ITEM_TEXT: _text(item_texts[r])} for r in chosen],
            })
    return out


# --- the report ------------------------------------------------------------------------------

def compute_report(item_ids: Sequence[bytes], codes, semantic_ids: Sequence[Sequence[int]],
                   embeddings, reconstruction_errors, item_texts: Sequence[bytes], *,
                   num_levels: int, codebook_size: int, collision_breaker: bool,
                   seed: int = REPORT_SEED, embedding_rows: Optional[np.ndarray] = None
                   ) -> Dict[str, Any]:
    """The sid_report.json dict (keys: REPORT_KEYS, see the module docstring). All sequences
    are row-aligned; codes are the L RQ-VAE codes, semantic_ids the final SIDs. `embeddings`
    holds every row, or (embedding_rows given, cosine_sample_rows) just those rows, in order:
    the cosine figures are then computed over them."""
    arr = _codes_2d(codes).reshape(-1, num_levels)
    n = arr.shape[0]
    m = n if embedding_rows is None else len(embedding_rows)
    emb = np.asarray(embeddings, dtype=np.float32).reshape(m, -1)
    if not (len(item_ids) == len(semantic_ids) == len(item_texts) == n):
        raise ValueError("compute_report: item_ids, codes, semantic_ids, embeddings and "
                         "item_texts must be row-aligned")
    errors = np.asarray(reconstruction_errors, dtype=np.float64).reshape(-1)
    mse = float(errors.mean()) if errors.size else None
    hier, hier_pairs = hierarchy_cosine(arr if embedding_rows is None else arr[embedding_rows], emb)
    rand, rand_pairs = random_pair_cosine(emb)
    report: Dict[str, Any] = dict(
        num_items=int(n), num_levels=int(num_levels), codebook_size=int(codebook_size),
        embedding_dim=int(emb.shape[1]), collision_breaker=bool(collision_breaker),
        sid_length=int(num_levels) + (1 if collision_breaker else 0),
        utilization=level_utilization(arr, codebook_size),
        perplexity=level_perplexity(arr),
        reconstruction_mse=mse if mse is not None and math.isfinite(mse) else None,
        duplicate_sids_after_breaker=duplicate_items(semantic_ids),
        max_breaker_code=(max((int(s[-1]) for s in semantic_ids), default=0)
                          if collision_breaker else 0),
        hierarchy_cosine=hier, hierarchy_pairs=hier_pairs,
        random_pair_cosine=rand, random_pairs=rand_pairs,
        paper_hierarchy_cosine=list(PAPER_HIERARCHY_COSINE),
        samples=sample_prefixes(item_ids, arr, semantic_ids, item_texts, seed=seed),
        cosine_items=int(m),
    )
    report.update(collision_stats(arr))
    return {key: report[key] for key in REPORT_KEYS}


# --- writers -----------------------------------------------------------------------------------

def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if pct:
        return f"{100 * x:.1f}%"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


_MD_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    return " ".join(text.split()).translate(_MD_ESCAPE)


def _pairs_scope(report: Mapping[str, Any]) -> str:
    m, n = report.get("cosine_items", report["num_items"]), report["num_items"]
    return "all pairs" if m >= n else f"all pairs of a seeded sample of {_fmt(m)} items"


def to_markdown(report: Mapping[str, Any]) -> str:
    """sid_report.md: the numbers, the hierarchy table and sampled prefixes with item texts."""
    lines = ["# Semantic ID report", "",
             f"{report['num_items']:,} items, {report['num_levels']} levels x "
             f"{report['codebook_size']} codes, SID length {report['sid_length']} "
             f"(collision breaker {'on' if report['collision_breaker'] else 'off'}).", "",
             "| metric | value |", "|---|---|"]
    rows = [
        ("items", _fmt(report["num_items"])),
        ("embedding dimension", _fmt(report["embedding_dim"])),
        ("utilisation per level", ", ".join(_fmt(u, pct=True) for u in report["utilization"])),
        ("perplexity per level (of K = %d)" % report["codebook_size"],
         ", ".join(_fmt(p) for p in report["perplexity"])),
        ("reconstruction MSE", _fmt(report["reconstruction_mse"])),
        ("distinct L-code SIDs", _fmt(report["distinct_sids_before_breaker"])),
        ("unique SID share (before breaker)", _fmt(report["unique_sid_share"], pct=True)),
        ("colliding groups (before breaker)", _fmt(report["colliding_groups"])),
        ("items in collisions (before breaker)", _fmt(report["collisions_before_breaker"])),
        ("largest collision group", _fmt(report["largest_collision_group"])),
        ("duplicate SIDs after breaker", _fmt(report["duplicate_sids_after_breaker"])),
        ("largest breaker code", _fmt(report["max_breaker_code"])),
        ("random-pair cosine", _fmt(report["random_pair_cosine"])),
    ]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "## Content similarity along the hierarchy", "",
              "Mean cosine similarity of the content embeddings over item pairs sharing at least "
              "the first n codes (" + _pairs_scope(report) + ").", "",
              "| shared prefix n | pairs | mean cosine | paper |", "|---|---|---|---|"]
    paper = report.get("paper_hierarchy_cosine") or []
    for i, (cos, pairs) in enumerate(zip(report["hierarchy_cosine"], report["hierarchy_pairs"])):
        lines.append(f"| {i + 1} | {_fmt(pairs)} | {_fmt(cos)} | "
                     f"{_fmt(paper[i]) if i < len(paper) else ''} |")
    lines.append(f"| random pairs | {_fmt(report['random_pairs'])} | "
                 f"{_fmt(report['random_pair_cosine'])} | |")
    titles = {"level_1": "Sampled level-1 codes", "level_2": "Sampled two-level prefixes"}
    for key, title in titles.items():
        groups = (report.get("samples") or {}).get(key) or []
        if not groups:
            continue
        lines += ["", f"## {title}", ""]
        for group in groups:
            shown = len(group["items"])
            lines += [f"### `{group['prefix']}` ({group['num_items']:,} items"
                      f"{', %d shown' % shown if shown < group['num_items'] else ''})", ""]
            for item in group["items"]:
                lines.append(f"- `{item[features.SEMANTIC_ID_STR]}` "
                             f"{_md(item[features.ITEM_TEXT]) or '(no text)'} "
                             f"(item {_md(item[features.ITEM_ID])})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_png(report: Mapping[str, Any]) -> bytes:
    """sid_report.png: hierarchy cosine vs shared prefix length (with the random-pair line and
    the paper's figures) and per-level utilisation bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    levels = list(range(1, report["num_levels"] + 1))
    hier = [np.nan if c is None else c for c in report["hierarchy_cosine"]]
    ax1.plot(levels, hier, marker="o", label="this catalog")
    paper = list(report.get("paper_hierarchy_cosine") or [])[:len(levels)]
    if paper:
        ax1.plot(levels[:len(paper)], paper, marker="s", linestyle=":", color="grey",
                 label="Singh et al. 2024")
    if report.get("random_pair_cosine") is not None:
        ax1.axhline(report["random_pair_cosine"], color="red", linestyle="--",
                    label="random pairs")
    ax1.set_xlabel("shared SID prefix length n")
    ax1.set_ylabel("mean cosine similarity")
    ax1.set_xticks(levels)
    ax1.set_title("Content similarity of items sharing a prefix")
    ax1.legend(loc="lower right", fontsize="small")
    util = report["utilization"]
    bars = ax2.bar(levels, util, color="tab:green")
    for bar, u in zip(bars, util):
        ax2.text(bar.get_x() + bar.get_width() / 2, u, f"{100 * u:.0f}%", ha="center",
                 va="bottom", fontsize="small")
    ax2.set_ylim(0, 1.1)
    ax2.set_xticks(levels)
    ax2.set_xlabel("level")
    ax2.set_ylabel(f"codes used / {report['codebook_size']}")
    ax2.set_title("Codebook utilisation")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_report(report_dir: str, report: Mapping[str, Any]) -> None:
    """Writes sid_report.json / .md / .png under report_dir (tf.io.gfile: local or GCS)."""
    import tensorflow as tf

    from components.semantic_id_gen import core

    tf.io.gfile.makedirs(report_dir)
    for name, data in ((SidReport.JSON_FILE, core.to_json(report).encode("utf-8")),
                       (SidReport.MD_FILE, to_markdown(report).encode("utf-8")),
                       (SidReport.PNG_FILE, to_png(report))):
        with tf.io.gfile.GFile(f"{report_dir.rstrip('/')}/{name}", "wb") as f:
            f.write(data)
