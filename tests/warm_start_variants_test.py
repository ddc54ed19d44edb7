"""benchmarks/warm_start_variants.py: the variants' settings, the table and a clear error when
the simulation has not run (its training is the Trainer's own train_model, tested elsewhere)."""
import importlib.util
import os

from models.ranking.config import RankingConfig

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "warm_start_variants.py")
_spec = importlib.util.spec_from_file_location("warm_start_variants", _PATH)
wsv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wsv)


def test_variants_scale_the_trainers_settings():
    cfg = RankingConfig(learning_rate=0.001, max_epochs=8)
    assert wsv.variant_config(cfg, wsv.VARIANTS["default"]) == cfg
    assert wsv.variant_config(cfg, wsv.VARIANTS["lr_x3"]).learning_rate == 0.003
    assert wsv.variant_config(cfg, wsv.VARIANTS["epochs_x2"]).max_epochs == 16
    assert wsv.variant_config(cfg, wsv.VARIANTS["no_warm_start"]) == cfg


def test_no_store_is_a_clear_error(tmp_path, capsys):
    assert wsv.main(["--metadata_path", str(tmp_path / "none.db")]) == 2
    assert "run `semids simulate" in capsys.readouterr().err


def test_the_table_gives_each_variants_mean_difference(capsys):
    rows = [{"eval_span": s, "variant": v, "best_val_auc": a, "diff_vs_default": d}
            for s, v, a, d in [("2", "default", "0.78", "0"), ("2", "lr_x3", "0.79", "0.01"),
                               ("10", "default", "0.80", "0"), ("10", "lr_x3", "0.77", "-0.03")]]
    wsv.print_table(rows, ["default", "lr_x3"])
    out = capsys.readouterr().out
    assert "| variant | span 2 | span 10 |" in out
    assert "| lr_x3 | 0.7900 | 0.7700 | -0.0100 |" in out
