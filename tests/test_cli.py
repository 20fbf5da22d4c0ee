"""End to end through the command line: synth -> train -> evaluate, and clear errors on bad input."""

import json

import pytest

from radcore.cli import main
from radcore.grid import book
from radcore.results import read_results

TINY = ["--model", "tiny-bert", "--random-init", "--epochs", "1", "--batch-size", "16", "--max-length", "64"]


def _train(dirs, tmp_path, dataset, *extra, name="run"):
    out = tmp_path / name
    assert main(["train", "--dataset", dataset, "--data", str(dirs[dataset]), *TINY, *extra, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("dataset", ["mimic-cxr", "ct-rate"])
def test_train_writes_the_results_contract(synthetic_dirs, tmp_path, dataset):
    run = _train(synthetic_dirs, tmp_path, dataset, "--mode", "dp-lora", "--epsilon", "1")
    results = read_results(run)
    test = results["metrics"]["test"]
    for key in ("weighted_f1", "macro_f1", "micro_f1", "auroc_macro", "per_label", "weighted_f1_ci95"):
        assert key in test
    label = results["data"]["label_names"][0]
    assert set(test["per_label"][label]) == {"precision", "recall", "f1", "support", "auroc"}
    privacy = results["privacy"]
    for key in ("epsilon_target", "epsilon_spent", "delta", "noise_multiplier", "sample_rate", "steps",
                "max_grad_norm", "accountant"):
        assert key in privacy
    assert privacy["epsilon_spent"] <= privacy["epsilon_target"] == 1.0
    assert results["timing"]["reports_per_s"] > 0 and results["versions"]["opacus"]
    assert (run / "adapter" / "adapter_config.json").is_file() and (run / "predictions.npz").is_file()
    assert results["config"]["dataset"] == dataset and results["config"]["learning_rate"] > 0


def test_same_seed_same_metrics_and_evaluate_reproduces_them(synthetic_dirs, tmp_path, capsys):
    first = _train(synthetic_dirs, tmp_path, "mimic-cxr", "--mode", "dp-lora", "--epsilon", "10", name="a")
    second = _train(synthetic_dirs, tmp_path, "mimic-cxr", "--mode", "dp-lora", "--epsilon", "10", name="b")
    assert read_results(first)["metrics"] == read_results(second)["metrics"]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(first), "--dataset", "mimic-cxr",
                 "--data", str(synthetic_dirs["mimic-cxr"])]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"]["weighted_f1"] == pytest.approx(read_results(first)["metrics"]["test"]["weighted_f1"])
    assert (first / "evaluations" / "mimic-cxr-test.json").is_file()


def test_full_fine_tuning_saves_the_whole_model_and_evaluate_reloads_it(synthetic_dirs, tmp_path, capsys):
    run = _train(synthetic_dirs, tmp_path, "ct-rate", "--mode", "full")
    assert (run / "model" / "model.safetensors").is_file() and read_results(run)["privacy"] is None
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"])]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"]["auroc_macro"] == pytest.approx(read_results(run)["metrics"]["test"]["auroc_macro"])


def test_a_run_folder_holds_one_run_and_overwrite_replaces_it_whole(synthetic_dirs, tmp_path, capsys):
    run = _train(synthetic_dirs, tmp_path, "ct-rate", "--mode", "full", name="R")
    argv = ["train", "--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"]), *TINY, "--mode", "lora",
            "--out", str(run)]
    capsys.readouterr()
    assert main(argv) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert (run / "model").is_dir() and read_results(run)["config"]["mode"] == "full"  # untouched
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["adapter", "predictions.npz", "results.json"]  # no stale model/
    assert read_results(run)["config"]["mode"] == "lora"
    (run / "evaluations").mkdir()
    assert main(argv) == 0  # the same run again needs no --overwrite, and replaces its folder too
    assert not (run / "evaluations").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]  # no staging folder left beside it


@pytest.mark.parametrize("args,expected", [
    (["--model", "gpt-17"], "unknown model 'gpt-17'"),
    (["--mode", "dp-lora"], "needs a target epsilon"),
    (["--mode", "lora", "--epsilon", "1"], "not private"),
    (["--mode", "dp-lora", "--epsilon", "1", "--delta", "0.5"], "delta must lie in"),
    (["--data-option", "uncertain=maybe"], "uncertain"),
    (["--data-option", "colour=red"], "unknown option"),
])
def test_bad_train_arguments_fail_with_a_clear_message(synthetic_dirs, tmp_path, capsys, args, expected):
    argv = ["train", "--dataset", "mimic-cxr", "--data", str(synthetic_dirs["mimic-cxr"]), *TINY, *args,
            "--out", str(tmp_path / "bad")]
    assert main(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "bad" / "results.json").exists()


def test_missing_data_dir_and_bad_epsilon(tmp_path, capsys):
    assert main(["train", "--dataset", "ct-rate", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "ct-rate", "--data", ".", "--mode", "dp-lora", "--epsilon", "0", "--out", "x"])


def test_synth_refuses_to_overwrite(synthetic_dirs, capsys):
    assert main(["synth", "--dataset", "ct-rate", "--n", "200", "--out", str(synthetic_dirs["ct-rate"])]) == 2
    assert "error" in capsys.readouterr().err


def test_a_failed_book_build_is_one_line_naming_what_to_do(tmp_path, monkeypatch, capsys):
    """Jupyter Book's own warnings name the page; radcore adds one line, not a CalledProcessError traceback."""
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: 'off'\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: missing\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(book.BookBuildFailed, match="jupyter-book build failed"):
        book.build_html(toc=tmp_path / "_toc.yml")

    def make_book(*args, **kwargs):
        book.build_html(toc=tmp_path / "_toc.yml")

    monkeypatch.setattr(book, "make_book", make_book)
    assert main(["book", "--profile", "ci"]) == 2
    err = capsys.readouterr().err
    assert "radcore book: error: jupyter-book build failed" in err and "Traceback" not in err


def test_train_flags_default_and_choose_as_the_run_config_does():
    """Each `radcore train` flag that mirrors a TrainConfig field has the field's default, and each choice list is
    the registry the config validates against: a default changed in one place cannot drift from the other."""
    import dataclasses

    from radcore.classifier import POOLINGS
    from radcore.cli import _parser
    from radcore.config import HEAD_INITS, MODES, TrainConfig
    from radcore.device import PRECISIONS
    from radcore.optim import OPTIMIZERS

    train = next(a for a in _parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    flags = {a.dest: a for a in train._actions}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    for name in ("lp_epochs", "max_grad_norm", "epochs", "max_length", "physical_batch_size", "adapt_layers",
                 "optimizer", "ema", "dropout", "head_init", "precision", "accountant", "pooling", "mode"):
        assert flags[name].default == fields[name], name
    for dest, registry in (("mode", MODES), ("optimizer", OPTIMIZERS), ("head_init", HEAD_INITS),
                           ("precision", PRECISIONS), ("pooling", POOLINGS)):
        assert tuple(flags[dest].choices) == tuple(registry), dest
