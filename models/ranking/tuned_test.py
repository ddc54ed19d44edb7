import json

import pytest

from models.ranking import tuned


def test_tuned_hparams_by_dataset_and_representation(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"ml100k": {"random_hash": {"learning_rate": 0.003},
                                           tuned.META_KEY: {"objective": "x"}}}))
    assert tuned.tuned_hparams("ml100k", "random_hash", str(path)) == {"learning_rate": 0.003}
    assert tuned.tuned_hparams("ml100k", "sid_spm", str(path)) == {}
    assert tuned.tuned_hparams("ml1m", "random_hash", str(path)) == {}
    assert tuned.tuned_hparams("ml100k", "random_hash", str(tmp_path / "none.json")) == {}


def test_an_unknown_setting_is_an_error_naming_it(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"ml100k": {"random_hash": {"momentum": 0.9}}}))
    with pytest.raises(ValueError, match="momentum"):
        tuned.tuned_hparams("ml100k", "random_hash", str(path))


def test_the_committed_file_names_only_tunable_settings():
    for dataset, entry in tuned.load_all().items():
        for representation in entry:
            if representation != tuned.META_KEY:
                tuned.tuned_hparams(dataset, representation)
