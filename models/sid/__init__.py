"""Semantic-ID symbols and sentences, shared by SpmTrainer and the Transform graph."""
