import numpy as np
import pytest
import tensorflow as tf

from models.rqvae import losses as losses_lib
from models.rqvae import model as model_lib
from models.rqvae import train as train_lib
from models.rqvae.config import RqVaeConfig


def _unit(rng, n, dim):
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(rng, n, dim, clusters, spread=0.15):
    centres = _unit(rng, clusters, dim)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _model(**kw):
    args = dict(embedding_dim=32, latent_dim=8, num_levels=3, codebook_size=16,
                hidden_units=(), beta=0.25, dead_code_window=5, seed=0)
    args.update(kw)
    m = model_lib.RqVae(**args)
    m.compile(optimizer=tf.keras.optimizers.Adam(1e-3, jit_compile=False))
    return m


@pytest.mark.parametrize("hidden_units", [(), (24,)])
def test_straight_through_gradients_reach_the_encoder(hidden_units):
    rng = np.random.default_rng(0)
    x = tf.constant(_unit(rng, 64, 32))
    m = _model(hidden_units=hidden_units)
    m.initialize_codebooks(x)
    with tf.GradientTape() as tape:
        out = m.forward(x, training=True)
        loss = losses_lib.rqvae_loss(x, out.reconstruction, out.residuals, out.codewords, m.beta)
    grads = tape.gradient(loss.loss, m.encoder.trainable_variables)
    assert len(grads) == 2 * (len(hidden_units) + 1)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    # the reconstruction term alone reaches the encoder only through the straight-through path
    with tf.GradientTape() as tape:
        out = m.forward(x, training=True)
        rec = losses_lib.reconstruction_loss(x, out.reconstruction)
    g = tape.gradient(rec, m.encoder.trainable_variables)
    assert g[0] is not None and float(tf.reduce_max(tf.abs(g[0]))) > 0
    # and codebooks get gradients (codebook term)
    with tf.GradientTape() as tape:
        out = m.forward(x, training=True)
        loss = losses_lib.rqvae_loss(x, out.reconstruction, out.residuals, out.codewords, m.beta)
    cb_grads = tape.gradient(loss.loss, m.quantizer.codebooks)
    assert all(g is not None for g in cb_grads)


def test_kmeans_init_level_by_level():
    rng = np.random.default_rng(1)
    x = _clustered(rng, 256, 32, clusters=16)
    m = _model(codebook_size=16, num_levels=2)
    m.initialize_codebooks(x)
    assert bool(m.codebooks_initialized.numpy())
    z = m.encoder(x).numpy()
    c0 = m.codebooks[0].numpy()
    # level 1 uses every code on clustered data and its rows are k-means centres of z
    codes = m.encode(x).numpy()
    assert len(np.unique(codes[:, 0])) == 16
    for k in range(16):
        np.testing.assert_allclose(c0[k], z[codes[:, 0] == k].mean(0), atol=1e-3)
    # level 2 was fitted on the residuals: its codewords are much smaller than level 1's
    assert np.linalg.norm(m.codebooks[1].numpy(), axis=1).mean() < \
        0.5 * np.linalg.norm(c0, axis=1).mean()


def test_dead_code_reset_revives_unused_codes():
    rng = np.random.default_rng(2)
    x = tf.constant(_unit(rng, 128, 32))
    window = 3
    m = _model(dead_code_window=window, codebook_size=8)
    m.initialize_codebooks(x)
    step = tf.function(m.train_step, autograph=False)
    dead = 5
    far = np.full((8,), 1e3, np.float32)
    m.codebooks[0].scatter_nd_update([[dead]], [far])  # nobody picks this code
    assert dead not in m.encode(x).numpy()[:, 0]
    for _ in range(window - 1):
        step(x)
    np.testing.assert_allclose(m.codebooks[0].numpy()[dead], far, rtol=1e-2)  # not yet
    step(x)  # the window is over: reset to a residual of this batch
    row = m.codebooks[0].numpy()[dead]
    assert np.abs(row).max() < 100
    assert m.last_used.numpy()[0, dead] == m.step.numpy()
    z = m.encoder(x).numpy()
    # the new codeword is one of the batch's level-0 residuals (the latents, taken before this
    # step's small encoder update)
    assert np.min(np.linalg.norm(z - row, axis=1)) < 1e-1
    used_after = False
    for _ in range(window):
        step(x)
        used_after |= dead in m.encode(x).numpy()[:, 0]
    assert used_after


def test_dead_code_reset_off():
    rng = np.random.default_rng(3)
    x = tf.constant(_unit(rng, 64, 32))
    m = _model(dead_code_window=0)
    m.initialize_codebooks(x)
    m.codebooks[0].scatter_nd_update([[3]], [np.full((8,), 1e3, np.float32)])
    for _ in range(4):
        m.train_step(x)
    assert np.abs(m.codebooks[0].numpy()[3]).min() > 900


def test_encode_is_deterministic():
    rng = np.random.default_rng(4)
    x = _unit(rng, 100, 32)
    m = _model(hidden_units=(16,))
    m.initialize_codebooks(x)
    a = m.encode(x).numpy()
    b = m.encode(x).numpy()
    c = tf.function(m.encode)(tf.constant(x)).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    codes, err = m.encode_with_error(x)
    np.testing.assert_array_equal(codes.numpy(), a)
    assert err.shape == (100,) and np.all(err.numpy() >= 0)


def test_keras_fit_uses_the_custom_train_step(seeded_training):
    rng = np.random.default_rng(5)
    x = _unit(rng, 200, 32)
    m = _model(seed=seeded_training)
    m.initialize_codebooks(x[:64])
    hist = m.fit(tf.data.Dataset.from_tensor_slices({"embedding": x}).batch(64), epochs=2,
                 verbose=0)
    assert set(hist.history) >= {"loss", "reconstruction", "codebook", "commitment",
                                 "dead_codes_reset"}
    assert int(m.step.numpy()) == 8


def test_training_improves_and_clusters_share_prefixes(seeded_training):
    rng = np.random.default_rng(6)
    x = _clustered(rng, 1000, 48, clusters=12)
    cfg = RqVaeConfig(num_levels=3, codebook_size=16, latent_dim=16, epochs=15, batch_size=128,
                      learning_rate=3e-3, dead_code_window=10, seed=seeded_training)
    res = train_lib.train_rqvae(x, cfg)
    s = res.summary
    losses = s["losses_per_epoch"]["loss"]
    assert losses[-1] < losses[0]
    assert res.codes.shape == (1000, 3)
    assert s["utilisation_per_level"][0] >= 0.7
    pc = s["prefix_cosine"]
    assert pc[0] > 0.5 and pc[1] >= pc[0] - 1e-6
    assert 0 < s["final_reconstruction_mse"] < 1.0 / 48


def test_paper_setting_runs(seeded_training):
    """1-layer encoder/decoder, D=256, L=8, K=2048, beta=0.25 on 3000 random unit vectors."""
    rng = np.random.default_rng(7)
    x = _unit(rng, 3000, 384)
    cfg = RqVaeConfig.paper(epochs=1, batch_size=256, seed=seeded_training)
    res = train_lib.train_rqvae(x, cfg, steps_per_epoch=3)
    assert res.summary["steps"] == 3
    assert res.codes.shape == (3000, 8)
    assert res.codes.min() >= 0 and res.codes.max() < 2048
    assert [cb.shape for cb in res.model.codebooks] == [(2048, 256)] * 8
    assert np.isfinite(res.summary["losses_per_epoch"]["loss"][0])


def test_catalog_statistics():
    codes = np.array([[0, 1], [0, 1], [0, 2], [1, 0]])
    emb = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    assert model_lib.utilisation(codes, 4) == [0.5, 0.75]
    assert model_lib.unique_sid_fraction(codes) == 0.75
    pc = model_lib.prefix_cosine(emb, codes)
    # prefix (0,): items 0,1,2 -> pairs (0,1)=1, (0,2)=0, (1,2)=0 -> 1/3; prefix (0,1): 1.0
    np.testing.assert_allclose(pc, [1 / 3, 1.0])


def test_prefix_cosine_uses_a_seeded_sample_above_the_cap():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(300, 2))
    emb = rng.normal(size=(300, 5)).astype(np.float32)
    rows = np.sort(np.random.default_rng(0).choice(300, size=50, replace=False))
    np.testing.assert_allclose(model_lib.prefix_cosine(emb, codes, max_items=50),
                               model_lib.prefix_cosine(emb[rows], codes[rows]), rtol=1e-6)
    assert model_lib.prefix_cosine(emb, codes, max_items=300) == model_lib.prefix_cosine(emb, codes)


def test_convergence_stops_after_patience_epochs_without_a_real_improvement():
    c = train_lib.Convergence(min_epochs=3, patience=2, min_improvement=0.01)
    # A slow, steady fall (0.6% an epoch) adds up to improvements: it never stops.
    assert not any(c.update(1.0 * 0.994 ** i) for i in range(50))
    c = train_lib.Convergence(min_epochs=3, patience=2, min_improvement=0.01)
    assert [c.update(x) for x in (1.0, 0.5, 0.499, 0.498)] == [False, False, False, True]
    c = train_lib.Convergence(min_epochs=6, patience=2, min_improvement=0.01)
    assert [c.update(x) for x in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)] == [False] * 5 + [True]


def test_training_stops_early_and_logs_progress(seeded_training, caplog):
    import logging

    train = train_lib
    emb = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    cfg = RqVaeConfig(num_levels=2, codebook_size=4, latent_dim=4, epochs=500, batch_size=50,
                      min_epochs=5, patience=3, min_improvement=0.5)
    interval, train.PROGRESS_INTERVAL_S = train.PROGRESS_INTERVAL_S, 0.0
    try:
        with caplog.at_level(logging.INFO, logger="semids.progress"):
            summary = train.train_rqvae(emb, cfg).summary
    finally:
        train.PROGRESS_INTERVAL_S = interval
    assert summary["stopped_early"] and summary["epochs"] < 500
    assert len(summary["losses_per_epoch"]["loss"]) == summary["epochs"]
    lines = [r.getMessage() for r in caplog.records]
    # The console's format (components/progress_test.py checks it is recognised).
    assert lines and all(" (this worker), " in ln and " rows/s, " in ln for ln in lines)
    assert lines[0].startswith("RqVaeTrainer: 50 embeddings")
