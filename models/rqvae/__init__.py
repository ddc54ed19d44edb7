"""RQ-VAE over frozen item content embeddings: an item's Semantic ID is its L residual codes.

After TIGER (Rajput et al. 2023) and Singh et al. (RecSys 2024); module layout after the
RQ-VAE-Recommender repo: one concept per file, outputs as named tuples.

    encoder.py     MLP encoder / decoder (hidden_units=() -> the paper's single Dense layer)
    quantizer.py   residual quantizer (L codebooks [K, D]) + straight-through estimator
    losses.py      reconstruction + codebook + beta * commitment
    kmeans.py      k-means used to initialise each level from the first batch's residuals
    model.py       RqVae (tf.keras.Model): custom train_step, dead-code reset, encode()
    config.py      RqVaeConfig: the Trainer's custom_config (RunConfig rqvae_* without the prefix)
    export.py      SavedModel signatures (serving_default, encode) + assets.extra/rqvae_config.json
    trainer_module.py  TFX Trainer module file (run_fn)
"""

