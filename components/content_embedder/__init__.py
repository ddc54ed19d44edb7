"""ContentEmbedder: item text -> content embeddings (MiniLM ONNX encoder or precomputed)."""
