"""Items added to the catalog after the model was exported: text -> content embedding (the
pipeline's frozen MiniLM encoder) -> Semantic ID (the exported RQ-VAE's `encode` signature), ready
for the ranking model's `serving_by_sid` signature. No pipeline rerun is needed.

    encoder = NewItemEncoder(encoder_dir, rqvae_model_dir)
    sids, embeddings = encoder.encode(["Toy Story 4 2019 Animation Children's Comedy"])
    SemidsClient().score_by_sid("42", ["new-1"], sids, embeddings, history=["1"], history_labels=[1])
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from schemas import features


class NewItemEncoder:
    def __init__(self, encoder_dir: str, rqvae_model_dir: str, sid_length: Optional[int] = None):
        """encoder_dir: model.onnx + tokenizer.json (outputs/encoders/...); rqvae_model_dir: the
        RQ-VAE SavedModel (the RqVaeTrainer's, at path_utils.serving_model_path(<model uri>));
        sid_length: the ranking model's SID length (serving_by_sid's `semantic_id` width): with
        the collision breaker it is L + 1, and a new item's breaker code is 0."""
        import tensorflow as tf
        from models.content_encoder import MiniLmEncoder
        self._text_encoder = MiniLmEncoder(encoder_dir)
        self._encode = tf.saved_model.load(rqvae_model_dir).signatures[features.RQVAE_ENCODE_SIGNATURE]
        self.sid_length = sid_length

    def encode(self, texts: Sequence[str]) -> Tuple[List[List[int]], np.ndarray]:
        """([semantic_id per text], float32 [n, E] content embeddings)."""
        import tensorflow as tf
        embeddings = self._text_encoder.encode(list(texts))
        out = self._encode(**{features.RQVAE_EMBEDDING_INPUT: tf.constant(embeddings, tf.float32)})
        codes = out[features.RQVAE_CODES_OUTPUT].numpy().tolist()
        if self.sid_length is not None:
            num_levels = len(codes[0]) if codes else 0
            if self.sid_length not in (num_levels, num_levels + 1):
                raise ValueError(f"the ranking model takes SIDs of {self.sid_length} codes but this "
                                 f"RQ-VAE gives {num_levels}: is it the same pipeline run's?")
            codes = [c + [0] * (self.sid_length - num_levels) for c in codes]
        return codes, embeddings
