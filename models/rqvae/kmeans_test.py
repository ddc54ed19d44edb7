import numpy as np

from models.rqvae import kmeans as kmeans_lib


def test_centroids_close_to_cluster_centres():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 16)).astype(np.float32) * 10
    points = np.concatenate([c + 0.1 * rng.normal(size=(50, 16)) for c in centres])
    res = kmeans_lib.kmeans(points, 8, num_iters=10, seed=1)
    assert res.centroids.shape == (8, 16) and res.centroids.dtype == np.float32
    # each true centre has a centroid within noise distance, and vice versa
    d = np.linalg.norm(centres[:, None] - res.centroids[None], axis=-1)
    assert d.min(axis=1).max() < 0.2
    assert d.min(axis=0).max() < 0.2
    assert len(np.unique(res.assignments)) == 8


def test_fewer_points_than_k():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 4)).astype(np.float32)
    res = kmeans_lib.kmeans(points, 20, seed=0)
    assert res.centroids.shape == (20, 4)
    assert np.all(np.isfinite(res.centroids))
    # every point is (nearly) a centroid; rows are distinct
    d = np.linalg.norm(points[:, None] - res.centroids[None], axis=-1)
    assert d.min(axis=1).max() < 0.05
    assert len(np.unique(res.centroids.round(6), axis=0)) == 20


def test_single_point_and_duplicates():
    res = kmeans_lib.kmeans(np.ones((1, 3), np.float32), 4)
    assert res.centroids.shape == (4, 3) and np.all(np.isfinite(res.centroids))
    res = kmeans_lib.kmeans(np.ones((10, 3), np.float32), 4)  # N > k, all equal
    assert res.centroids.shape == (4, 3) and np.all(np.isfinite(res.centroids))
