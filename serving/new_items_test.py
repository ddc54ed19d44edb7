"""A new item's SID from its text: the real content encoder + an RQ-VAE SavedModel's encode."""
import numpy as np
import pytest

from models.rqvae import fake_rqvae
from models import content_encoder
from serving.new_items import NewItemEncoder


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("new_items")
    encoder_dir = content_encoder.prepare_encoder_dir(str(tmp / "encoder"))
    rqvae_dir = str(tmp / "rqvae")
    fake_rqvae.save_fake_rqvae(rqvae_dir, embedding_dim=384, num_levels=3, codebook_size=8)
    return encoder_dir, rqvae_dir


def test_text_to_sid_and_embedding_with_the_breaker_code(dirs):
    texts = ["Toy Story 4 2019 Animation Children's Comedy", "Jaws 19 2030 Horror"]
    sids, embeddings = NewItemEncoder(*dirs, sid_length=4).encode(texts)
    assert embeddings.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert [len(s) for s in sids] == [4, 4] and all(s[-1] == 0 for s in sids)
    assert all(0 <= c < 8 for s in sids for c in s)
    again, _ = NewItemEncoder(*dirs, sid_length=4).encode(texts)
    assert again == sids  # deterministic


def test_sid_length_of_another_run_is_refused(dirs):
    with pytest.raises(ValueError, match="same pipeline run"):
        NewItemEncoder(*dirs, sid_length=9).encode(["x"])
