import os

from pipeline import cli


def test_experiment_prints_its_lines_and_sends_stderr_to_a_log(tmp_path, capfd, monkeypatch):
    from pipeline import experiment

    def summarize(out_dir):
        os.write(2, b"normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty.\n")
        with open(os.path.join(out_dir, experiment.TABLE_FILE), "w") as f:
            f.write("| representation |\n")

    monkeypatch.setattr(experiment, "summarize", summarize)
    out_dir = tmp_path / "experiment"
    out_dir.mkdir()
    capfd.readouterr()  # importing TF above printed its own messages
    assert cli.main(["experiment", "--summarize_only", "--out_dir", str(out_dir),
                     "--output_dir", str(tmp_path / "outputs")]) == 0
    out, err = capfd.readouterr()
    assert "| representation |" in out and err == ""
    logs = os.listdir(tmp_path / "outputs" / "logs")
    assert len(logs) == 1 and logs[0].startswith("experiment-")
    assert logs[0] in out  # the first line says where the messages go
    with open(tmp_path / "outputs" / "logs" / logs[0]) as f:
        assert "precompiled_charsmap" in f.read()


def test_an_experiment_error_is_one_line_and_its_traceback_goes_to_the_log(tmp_path, capfd,
                                                                         monkeypatch):
    from pipeline import experiment

    def summarize(out_dir):
        raise ValueError(f"no results in {out_dir}/results.csv")

    monkeypatch.setattr(experiment, "summarize", summarize)
    capfd.readouterr()
    assert cli.main(["experiment", "--summarize_only", "--out_dir", str(tmp_path),
                     "--output_dir", str(tmp_path / "outputs")]) == 1
    out, err = capfd.readouterr()
    assert err == f"semids: error: no results in {tmp_path}/results.csv\n"
    (log,) = os.listdir(tmp_path / "outputs" / "logs")
    with open(tmp_path / "outputs" / "logs" / log) as f:
        assert "Traceback" in f.read()


def test_a_stopped_command_says_so_in_one_line(tmp_path, capfd, monkeypatch):
    from pipeline import experiment

    def summarize(out_dir):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM (pipeline/interrupts.py)

    monkeypatch.setattr(experiment, "summarize", summarize)
    capfd.readouterr()
    assert cli.main(["experiment", "--summarize_only", "--out_dir", str(tmp_path),
                     "--output_dir", str(tmp_path / "outputs")]) == 130
    out, err = capfd.readouterr()
    assert err == ("semids experiment: stopped; what finished is kept, and the same command "
                   "resumes from it\n")
