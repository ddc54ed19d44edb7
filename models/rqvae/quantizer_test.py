import numpy as np
import tensorflow as tf

from models.rqvae import quantizer as quantizer_lib


def test_codes_shape_and_residual_arithmetic():
    rng = np.random.default_rng(0)
    q = quantizer_lib.ResidualQuantizer(num_levels=3, codebook_size=16, latent_dim=8)
    for cb in q.codebooks:
        cb.assign(rng.normal(size=(16, 8)).astype(np.float32))
    z = tf.constant(rng.normal(size=(32, 8)).astype(np.float32))
    out = q(z)
    assert out.codes.shape == (32, 3) and out.codes.dtype == tf.int64
    assert out.quantized.shape == (32, 8)
    assert out.residuals.shape == (32, 3, 8) and out.codewords.shape == (32, 3, 8)
    res, cw = out.residuals.numpy(), out.codewords.numpy()
    np.testing.assert_allclose(res[:, 0], z.numpy())
    for l in range(2):
        np.testing.assert_allclose(res[:, l + 1], res[:, l] - cw[:, l], atol=1e-6)
    np.testing.assert_allclose(out.quantized.numpy(), cw.sum(axis=1), atol=1e-5)
    # each level picked the nearest codeword (brute force) and the codeword is that row
    for l, cb in enumerate(q.codebooks):
        d = ((res[:, l, None, :] - cb.numpy()[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(out.codes.numpy()[:, l], d.argmin(1))
        np.testing.assert_allclose(cw[:, l], cb.numpy()[out.codes.numpy()[:, l]])


def test_exact_codewords_are_recovered():
    q = quantizer_lib.ResidualQuantizer(num_levels=2, codebook_size=4, latent_dim=2)
    q.codebooks[0].assign([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    q.codebooks[1].assign([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    z = tf.constant([[10.0, 1.0], [-1.0, -10.0]])
    out = q(z)
    np.testing.assert_array_equal(out.codes.numpy(), [[0, 1], [3, 2]])
    np.testing.assert_allclose(out.quantized.numpy(), z.numpy())


def test_straight_through_forward_value_and_identity_gradient():
    z = tf.Variable([[1.0, 2.0]])
    z_q = tf.constant([[3.0, -1.0]])
    with tf.GradientTape() as tape:
        y = quantizer_lib.straight_through(z, z_q)
        loss = tf.reduce_sum(y * tf.constant([[2.0, 5.0]]))
    np.testing.assert_allclose(y.numpy(), z_q.numpy())
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), [[2.0, 5.0]])
