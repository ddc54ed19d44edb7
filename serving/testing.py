"""A tiny SavedModel with the ranking model's serving signatures, for the serving tests and the
benchmark (no TFX run needed): `serving_default`, `serving_tf_example`, `serving_by_sid` with the
same input names, dtypes and ranks, and `regress` / `classify` over tf.Examples; the score is a deterministic function of the inputs
(string hashes) plus `bias`, so two versions with different biases answer differently."""
import os
import socket

from schemas import features


def write_tiny_model(path: str, bias: float = 0.0, history_length: int = 5, sid_length: int = 3,
                     embedding_dim: int = 4, warmup: bool = False, by_sid: bool = True) -> str:
    """Writes the tiny model to `path`; by_sid=False leaves out `serving_by_sid`, as the Trainer
    does for a representation that reads neither SIDs nor content (random_hash)."""
    import tensorflow as tf

    H, S, E = history_length, sid_length, embedding_dim

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.bias = tf.Variable(float(bias), dtype=tf.float32)
            self.w = tf.Variable(tf.linspace(0.1, 0.5, E), dtype=tf.float32)

        def _score(self, user_id, item_id, history, history_labels, extra=0.0):
            def h(x, n):
                return tf.cast(tf.strings.to_hash_bucket_fast(x, n), tf.float32)
            present = tf.cast(tf.not_equal(history, features.HISTORY_PAD), tf.float32)
            hist = tf.reduce_sum(h(history, 983) * present *
                                 (tf.cast(history_labels, tf.float32) + 0.5), axis=1)
            x = h(user_id, 997) * 0.01 - h(item_id, 991) * 0.02 + hist * 0.001 + extra + self.bias
            return {features.PREDICTION_KEY: tf.sigmoid(3.0 * tf.sin(x))}

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name=features.USER_ID),
            tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
            tf.TensorSpec([None, H], tf.string, name=features.HISTORY),
            tf.TensorSpec([None, H], tf.int64, name=features.HISTORY_LABELS)])
        def serve_raw(self, user_id, item_id, history, history_labels):
            return self._score(user_id, item_id, history, history_labels)

        def _score_examples(self, examples):
            # history as the pipeline's tf.Examples hold it: variable length, padded here to H
            parsed = tf.io.parse_example(examples, {
                features.USER_ID: tf.io.FixedLenFeature([], tf.string),
                features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
                features.HISTORY: tf.io.VarLenFeature(tf.string),
                features.HISTORY_LABELS: tf.io.VarLenFeature(tf.int64)})

            def dense(sp, default):
                d = tf.sparse.to_dense(sp, default_value=default)[:, :H]
                return tf.pad(d, [[0, 0], [0, H - tf.shape(d)[1]]], constant_values=default)
            return self._score(parsed[features.USER_ID], parsed[features.ITEM_ID],
                               dense(parsed[features.HISTORY], features.HISTORY_PAD),
                               dense(parsed[features.HISTORY_LABELS], tf.constant(0, tf.int64)))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_examples(self, examples):
            return self._score_examples(examples)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def serve_regress(self, inputs):
            return {"outputs": self._score_examples(inputs)[features.PREDICTION_KEY]}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def serve_classify(self, inputs):
            p = self._score_examples(inputs)[features.PREDICTION_KEY]
            return {"scores": tf.stack([1.0 - p, p], axis=1),
                    "classes": tf.tile(tf.constant([list(features.CLASSIFY_CLASSES)]),
                                       [tf.shape(p)[0], 1])}

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name=features.USER_ID),
            tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
            tf.TensorSpec([None, H], tf.string, name=features.HISTORY),
            tf.TensorSpec([None, H], tf.int64, name=features.HISTORY_LABELS),
            tf.TensorSpec([None, S], tf.int64, name=features.SEMANTIC_ID),
            tf.TensorSpec([None, E], tf.float32, name=features.CONTENT_EMBEDDING)])
        def serve_by_sid(self, user_id, item_id, history, history_labels, semantic_id,
                         content_embedding):
            extra = (tf.reduce_sum(tf.cast(semantic_id, tf.float32), axis=1) * 0.03 +
                     tf.linalg.matvec(content_embedding, self.w))
            return self._score(user_id, item_id, history, history_labels, extra)

    module = Tiny()
    signatures = {
        features.SERVING_DEFAULT_SIGNATURE: module.serve_raw.get_concrete_function(),
        features.SERVING_TF_EXAMPLE_SIGNATURE: module.serve_examples.get_concrete_function(),
        features.REGRESS_SIGNATURE: module.serve_regress.get_concrete_function(),
        features.CLASSIFY_SIGNATURE: module.serve_classify.get_concrete_function()}
    if by_sid:
        signatures[features.SERVING_BY_SID_SIGNATURE] = module.serve_by_sid.get_concrete_function()
    tf.saved_model.save(module, path, signatures=signatures)
    if warmup:
        from models.ranking.warmup import write_warmup_requests
        write_warmup_requests(path)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def newest_pushed_model(base: str = os.path.join("outputs", "serving", "semids")):
    """The newest complete numbered version under a pushed model base path, or None."""
    if not os.path.isdir(base):
        return None
    versions = sorted((int(v) for v in os.listdir(base)
                       if v.isdigit() and os.path.isfile(os.path.join(base, v, "saved_model.pb"))),
                      reverse=True)
    return os.path.join(base, str(versions[0])) if versions else None
