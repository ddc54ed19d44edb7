"""Does the stock `tensorflow/serving` model server have every op an exported graph uses?

The stock server links TensorFlow's core ops plus (tensorflow_serving/model_servers/BUILD,
SUPPORTED_TENSORFLOW_OPS) `@org_tensorflow_text//tensorflow_text:ops_lib` and TF Decision Forests'
inference ops. tensorflow/text's `ops_lib` (tensorflow_text/BUILD) is the list below; each entry
ships in the tensorflow-text pip package as `python/ops/_<name>.so`, whose op list we read, so
the SentencePiece ops of the sid_spm graph are checked by name, not assumed.
"""
import os
from typing import Iterable, Set

from tensorflow.core.protobuf import saved_model_pb2

# deps of cc_library(name = "ops_lib") in tensorflow/text's tensorflow_text/BUILD (minus "_cc")
TF_TEXT_OPS_LIB = (
    "boise_offset_converter", "byte_splitter", "constrained_sequence_op", "fast_bert_normalizer",
    "fast_sentencepiece_tokenizer", "fast_wordpiece_tokenizer", "mst_ops", "ngrams_op",
    "normalize_ops", "phrase_tokenizer", "regex_split_ops", "sentence_breaking_ops",
    "sentencepiece_mobile_tokenizer", "sentencepiece_tokenizer", "split_merge_from_logits_tokenizer",
    "split_merge_tokenizer", "state_based_sentence_breaker_op", "text_similarity_metric_ops",
    "trimmer_ops", "unicode_script_tokenizer", "utf8_binarize_op", "whitespace_tokenizer",
    "whitespace_tokenizer_v2", "wordpiece_tokenizer")


def core_ops() -> Set[str]:
    """TensorFlow's own ops (every op with a tf.raw_ops wrapper)."""
    import tensorflow as tf
    return {name for name in dir(tf.raw_ops) if not name.startswith("_")}


def tf_text_ops() -> Set[str]:
    """Ops of tensorflow-text's ops_lib, read from the installed package's op libraries."""
    import tensorflow_text
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api
    ops_dir = os.path.join(os.path.dirname(tensorflow_text.__file__), "python", "ops")
    names = set()
    for lib in TF_TEXT_OPS_LIB:
        path = os.path.join(ops_dir, f"_{lib}.so")
        if os.path.exists(path):  # a few entries ship inside another library
            op_list = op_def_pb2.OpList.FromString(c_api.TF_GetOpList(c_api.TF_LoadLibrary(path)))
            names.update(op.name for op in op_list.op)
    return names


def stock_server_ops() -> Set[str]:
    return core_ops() | tf_text_ops()


def saved_model_ops(saved_model_dir: str) -> Set[str]:
    """Every op type in a SavedModel's graphs and function library."""
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    ops = set()
    for meta_graph in sm.meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
    # Calls of functions defined in the library are not ops of the server.
    functions = {f.signature.name for mg in sm.meta_graphs for f in mg.graph_def.library.function}
    return ops - functions


def missing_in_stock_server(saved_model_dirs: Iterable[str]) -> dict:
    """{saved model dir: sorted ops the stock server lacks} (empty lists: deployable as is)."""
    stock = stock_server_ops()
    return {d: sorted(saved_model_ops(d) - stock) for d in saved_model_dirs}
