"""k-means (k-means++ seeding + a few Lloyd iterations, numpy float32) for codebook init.

With fewer points than clusters every point is used once and the remaining rows are points
sampled with replacement; all rows get small gaussian noise so duplicates are distinct.
"""
import collections

import numpy as np

KMeansResult = collections.namedtuple(
    "KMeansResult", ["centroids",     # float32 [k, D]
                     "assignments",   # int64 [N]: nearest centroid of each point
                     "inertia"])      # float: sum of squared distances to the nearest centroid


def _sq_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d = (np.sum(points * points, axis=1)[:, None] - 2.0 * points @ centroids.T
         + np.sum(centroids * centroids, axis=1)[None, :])
    return np.maximum(d, 0.0)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = points.shape[0]
    centroids = np.empty((k, points.shape[1]), np.float32)
    centroids[0] = points[rng.integers(n)]
    min_d2 = np.sum((points - centroids[0]) ** 2, axis=1)
    for i in range(1, k):
        total = float(min_d2.sum())
        idx = rng.choice(n, p=min_d2 / total) if total > 0 else rng.integers(n)
        centroids[i] = points[idx]
        np.minimum(min_d2, np.sum((points - centroids[i]) ** 2, axis=1), out=min_d2)
    return centroids


def kmeans(points, k: int, num_iters: int = 10, seed: int = 0,
           noise_scale: float = 1e-3) -> KMeansResult:
    """Cluster points [N, D] into k centroids.

    noise_scale: std of the noise added to centroids when N < k, relative to the points' overall
    std (absolute 1e-3 * noise_scale if the points are constant).
    """
    points = np.asarray(points, np.float32)
    n = points.shape[0]
    if n == 0:
        raise ValueError("kmeans needs at least one point")
    rng = np.random.default_rng(seed)
    if n <= k:
        extra = rng.integers(0, n, size=k - n)
        idx = np.concatenate([rng.permutation(n), extra])
        scale = float(points.std()) or 1e-3
        centroids = points[idx] + rng.normal(0.0, noise_scale * scale,
                                             size=(k, points.shape[1])).astype(np.float32)
        d2 = _sq_distances(points, centroids)
        assign = np.argmin(d2, axis=1)
        return KMeansResult(centroids.astype(np.float32), assign.astype(np.int64),
                            float(d2[np.arange(n), assign].sum()))

    centroids = _kmeans_plus_plus(points, k, rng)
    for _ in range(num_iters):
        d2 = _sq_distances(points, centroids)
        assign = np.argmin(d2, axis=1)
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, points)
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty, None]
        empty = np.flatnonzero(~nonempty)
        if empty.size:  # re-seed empty clusters at the worst-served points
            worst = np.argsort(-d2[np.arange(n), assign])[:empty.size]
            centroids[empty] = points[worst]
    d2 = _sq_distances(points, centroids)
    assign = np.argmin(d2, axis=1)
    return KMeansResult(centroids.astype(np.float32), assign.astype(np.int64),
                        float(d2[np.arange(n), assign].sum()))
