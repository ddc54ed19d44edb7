"""ModelRegistry without HTTP: discovery, half-written versions, failed loads, labels, status."""
import os
import shutil

import numpy as np
import pytest

from serving.conftest import instance
from serving.model_registry import ModelRegistry, parse_model_config
from serving.errors import ServingError


def _score(servable, inst):
    sig = servable.signature("serving_default")
    arrays = {k: np.array([v], dtype=object if k != "history_labels" else np.int64)
              for k, v in inst.items()}
    arrays = {k: (np.vectorize(lambda s: s.encode(), otypes=[object])(v) if v.dtype == object
                  else v) for k, v in arrays.items()}
    return float(sig.run(sig.validate(arrays))["score"][0])


def test_newest_version_half_written_and_failed_versions(tiny_models, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    shutil.copytree(tiny_models["a"], base / "3")
    shutil.copytree(tiny_models["b"], base / ".tmp-9")  # a deployer's temp name: ignored
    (base / "notes").mkdir()
    reg = ModelRegistry(str(base), "semids", poll_interval_s=60)
    reg.refresh()
    assert reg.versions() == [3] and reg.get().version == 3
    # warm-up requests of model a (predict, regress and classify) were replayed before it
    # became available
    assert reg.get().warmup_requests_replayed == 6
    old = reg.get()
    # a half-written version (no saved_model.pb yet) is ignored until complete
    shutil.copytree(tiny_models["b"], base / "5", ignore=shutil.ignore_patterns("saved_model.pb"))
    assert reg.refresh() is False and reg.versions() == [3]
    shutil.copy(os.path.join(tiny_models["b"], "saved_model.pb"), base / "5")
    assert reg.refresh() is True and reg.versions() == [5]
    inst = instance()
    assert _score(old, inst) != pytest.approx(_score(reg.get(), inst))  # old object still works
    status = reg.status()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("5", "AVAILABLE"), ("3", "END")]
    # a broken newer version: reported, not served; the current one keeps serving
    (base / "7").mkdir()
    (base / "7" / "saved_model.pb").write_bytes(b"not a saved model")
    reg.refresh()
    assert reg.versions() == [5]
    broken = reg.status(version=7)["model_version_status"][0]
    assert broken["state"] == "END" and broken["status"]["error_code"] == "UNKNOWN"
    assert "failed to load" in broken["status"]["error_message"]
    assert reg.refresh() is False  # not retried while its files are unchanged
    shutil.rmtree(base / "7")
    shutil.copytree(tiny_models["a"], base / "7")  # fixed: retried and served
    assert reg.refresh() is True and reg.versions() == [7]
    with pytest.raises(ServingError) as e:
        reg.get(version=5)
    assert e.value.status == 404
    with pytest.raises(ServingError):
        reg.check_name("other")


def test_labels_and_policy_from_tf_serving_config(tiny_models, tmp_path):
    base = tmp_path / "base"
    for v, m in ((1, "a"), (2, "b"), (3, "c")):
        shutil.copytree(tiny_models[m], base / str(v))
    config = tmp_path / "models.config"
    config.write_text('model_config_list {\n config {\n  name: "semids"\n  base_path: "%s"\n'
                      '  model_platform: "tensorflow"\n'
                      '  version_labels { key: "stable" value: 1 }\n } }\n' % base)
    assert parse_model_config(str(config), "semids").labels == {"stable": 1}
    reg = ModelRegistry(None, "semids", model_config_file=str(config), poll_interval_s=60,
                        warmup=False)
    reg.refresh()
    assert reg.versions() == [1, 3]  # latest 1 plus the labeled version
    assert reg.get(label="stable").version == 1 and reg.get().version == 3
    with pytest.raises(ServingError):
        reg.get(label="canary")
    config.write_text('model_config_list { config { name: "semids"\n'
                      '  model_version_policy { specific { versions: 1 versions: 2 } }\n'
                      '  version_labels { key: "canary" value: 2 } } }\n')
    os.utime(config, ns=(1, 10 ** 18))  # make sure the change is seen
    reg.refresh()
    assert reg.versions() == [1, 2]
    assert reg.get(label="canary").version == 2 and reg.labels == {"canary": 2}
    with pytest.raises(ValueError):
        bad = tmp_path / "bad.config"
        bad.write_text("model_config_list { nonsense }")
        parse_model_config(str(bad), "semids")
