import numpy as np
import tensorflow as tf

from models.rqvae import losses as losses_lib


def test_loss_parts_values():
    x = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    x_hat = tf.constant([[0.0, 0.0], [0.0, 3.0]])
    residuals = tf.constant([[[1.0, 1.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])
    codewords = tf.constant([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]])
    out = losses_lib.rqvae_loss(x, x_hat, residuals, codewords, beta=0.25)
    assert out._fields == ("loss", "reconstruction", "codebook", "commitment")
    np.testing.assert_allclose(out.reconstruction.numpy(), (1 + 4) / 2)
    # item 0: 1 + 1 = 2; item 1: 4 + 1 = 5
    np.testing.assert_allclose(out.codebook.numpy(), 3.5)
    np.testing.assert_allclose(out.commitment.numpy(), 3.5)
    np.testing.assert_allclose(out.loss.numpy(), 2.5 + 3.5 + 0.25 * 3.5)


def test_codebook_term_moves_codewords_commitment_moves_residuals():
    r = tf.Variable([[[1.0, 2.0]]])
    e = tf.Variable([[[0.0, 0.0]]])
    with tf.GradientTape(persistent=True) as tape:
        codebook, commitment = losses_lib.quantization_losses(r, e)
    assert tape.gradient(codebook, r) is None
    assert tape.gradient(commitment, e) is None
    np.testing.assert_allclose(tape.gradient(codebook, e).numpy(), [[[-2.0, -4.0]]])
    np.testing.assert_allclose(tape.gradient(commitment, r).numpy(), [[[2.0, 4.0]]])
