"""`python -m mvl.main` as a user runs it: outputs, resume by rerunning, and errors that
name their cause."""
import glob
import json
import os

import pytest

from mvl import main as mvl_main
from tests.conftest import TINY


def main_args(tokenizer_path, workdir, method="maskvlm", **overrides):
    values = {**TINY, "data.tokenizer": tokenizer_path, **overrides}
    return (["--config", f"configs/{method}.py:demo", "--workdir", str(workdir)]
            + [f"--config.{k}={v}" for k, v in values.items()])


def test_main_trains_evaluates_writes_outputs_and_resumes(tokenizer_path, tmp_path, capsys):
    workdir = tmp_path / "run"
    assert mvl_main.main(main_args(tokenizer_path, workdir, total_steps=4)) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    for key in ("retrieval/image_to_text/r@1", "retrieval/text_to_image/r@10",
                "retrieval/chance/r@1", "zeroshot/shape/accuracy", "zeroshot/colour/chance"):
        assert key in final
    assert final["retrieval/chance/r@1"] == pytest.approx(1 / 64)
    assert glob.glob(str(workdir / "tensorboard" / "events.out.tfevents.*"))
    assert glob.glob(str(workdir / "reconstructions_*.png"))
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    out = capsys.readouterr().out
    assert "[train 4/4]" in out and "steps/s" in out

    # Rerunning the same command with a longer budget resumes from step 4.
    assert mvl_main.main(main_args(tokenizer_path, workdir, total_steps=6)) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "[train 6/6]" in out and "[train 2/6]" not in out
    assert "6" in os.listdir(workdir / "checkpoints")


def test_unknown_config_key_is_named(tokenizer_path, tmp_path, capsys):
    args = main_args(tokenizer_path, tmp_path) + ["--config.optim.lrr=0.1"]
    assert mvl_main.main(args) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.lrr'" in err and "did you mean 'optim.lr'" in err
    assert "Traceback" not in err


def test_bad_config_value_is_named(tokenizer_path, tmp_path, capsys):
    assert mvl_main.main(main_args(tokenizer_path, tmp_path, total_steps="many")) == 2
    assert "config key 'total_steps'" in capsys.readouterr().err


def test_unwritable_workdir_is_named(tokenizer_path, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert mvl_main.main(main_args(tokenizer_path, blocker / "run")) == 2
    err = capsys.readouterr().err
    assert f"workdir {blocker / 'run'} is not writable" in err


def test_checkpoint_from_a_different_architecture_is_named(tokenizer_path, tmp_path, capsys):
    workdir = tmp_path / "run"
    assert mvl_main.main(main_args(tokenizer_path, workdir, "clip", total_steps=2)) == 0
    capsys.readouterr()
    wider = main_args(tokenizer_path, workdir, "clip", total_steps=4,
                      **{"model.image.mlp_dim": "96"})
    assert mvl_main.main(wider) == 2
    err = capsys.readouterr().err
    assert "does not match this config's model" in err
    assert "image/encoder/block0/mlp/fc1/kernel saved (32, 64) vs model (32, 96)" in err
