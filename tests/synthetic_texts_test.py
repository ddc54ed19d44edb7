"""The synthetic generator's realistic texts (data/synthetic.py) measured with the shipped
encoder's tokenizer (models/content_encoder.py): the token lengths of a real catalog's texts.
Here, not beside data/synthetic.py: data/ may not import models/."""
import numpy as np
from tokenizers import Tokenizer

from data import format as fm
from data import synthetic
from models import content_encoder


def test_realistic_texts_have_the_catalogs_token_lengths(tmp_path):
    tokenizer = Tokenizer.from_file(
        content_encoder.default_encoder_sources()[content_encoder.TOKENIZER_FILE])
    tokenizer.no_padding()
    tokenizer.no_truncation()
    r = synthetic.generate_synthetic(str(tmp_path / "d"), 100, 5000, 500, seed=0,
                                     text_mode="realistic")
    _, items = fm.read_items(r["paths"]["items"])
    texts = [" ".join(row[f] for f in synthetic.ITEM_TEXT_FIELDS) for _, row, _ in items]
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
    assert 18 <= p50 <= 22 and 32 <= p90 <= 38 and 50 <= p99 <= 62 and lengths.max() <= 72
