from models.rqvae.sizing import codebook_size_for


def test_k_stays_64_up_to_64_cubed_items_then_grows_to_cover_the_catalog():
    assert codebook_size_for(1682, 4) == codebook_size_for(3883, 4) == 64
    assert codebook_size_for(262_144, 4) == 64
    assert codebook_size_for(262_145, 4) == 65
    assert codebook_size_for(270_000, 4) == 65
    assert codebook_size_for(1_000_000, 4) == 100
    assert codebook_size_for(2_000_000, 4) == 126  # 125^3 = 1,953,125 < 2M <= 126^3


def test_unknown_catalog_or_one_level_keeps_the_default():
    assert codebook_size_for(None, 4) == 64
    assert codebook_size_for(10 ** 7, 1) == 64
    assert codebook_size_for(10 ** 6, 3) == 1000
