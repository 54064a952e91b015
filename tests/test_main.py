"""`python -m mvl.main` as a user runs it: outputs, resume by rerunning, and errors that
name their cause."""

import glob
import json
import os
import subprocess

import pytest

from mvl import main as mvl_main
from tests.conftest import tiny_for


def main_args(tokenizer_path, workdir, method="maskvlm", **overrides):
    values = {**tiny_for(method), "data.tokenizer": tokenizer_path, **overrides}
    return ["--config", f"configs/{method}.py:demo", "--workdir", str(workdir)] + [
        f"--config.{k}={v}" for k, v in values.items()
    ]


def test_main_trains_evaluates_writes_outputs_and_resumes(tokenizer_path, tmp_path, capsys):
    workdir = tmp_path / "run"
    args = main_args(tokenizer_path, workdir, total_steps=4, **{"eval.every_steps": "2"})
    assert mvl_main.main(args) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    for key in (
        "retrieval/image_to_text/r@1",
        "retrieval/text_to_image/r@10",
        "retrieval/chance/r@1",
        "zeroshot/shape/accuracy",
        "zeroshot/colour/chance",
    ):
        assert key in final
    assert final["retrieval/chance/r@1"] == pytest.approx(1 / 64)
    assert glob.glob(str(workdir / "tensorboard" / "events.out.tfevents.*"))
    assert glob.glob(str(workdir / "reconstructions_*.png"))
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    out = capsys.readouterr().out
    assert "[train 4/4]" in out and "steps/s" in out
    assert "[eval 2/4]" in out and "[eval 4/4]" in out  # every eval.every_steps, and at the end
    check_inspect_notebook_reads(workdir)

    # Rerunning the same command with a longer budget resumes from step 4.
    assert mvl_main.main(main_args(tokenizer_path, workdir, total_steps=6)) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "[train 6/6]" in out and "[train 2/6]" not in out
    assert "6" in os.listdir(workdir / "checkpoints")


def check_inspect_notebook_reads(workdir):
    """notebooks/inspect_run.ipynb runs top to bottom on a real run's outputs."""
    notebook = json.loads(open("notebooks/inspect_run.ipynb").read())
    os.environ["MVL_WORKDIR"] = str(workdir)
    namespace = {}
    try:
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec("".join(cell["source"]), namespace)
    finally:
        del os.environ["MVL_WORKDIR"]
    assert any(key == "retrieval/image_to_text/r@1" for key, _, _ in namespace["rows"])
    assert "train/mim/loss" in namespace["curves"] and namespace["reconstructions"] is not None


def test_launch_local_dry_run_prints_the_command():
    result = subprocess.run(
        [
            "bash",
            "launch/local.sh",
            "--dry-run",
            "configs/maskvlm.py:demo",
            "/tmp/x y",
            "--config.total_steps=5",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == (
        "python -m mvl.main --config configs/maskvlm.py:demo "
        "--workdir /tmp/x\\ y --config.total_steps=5"
    )


@pytest.mark.parametrize(
    "script, env, expected",
    [
        (
            "launch/tpu_pod.sh",
            {"TPU_NAME": "pod", "ZONE": "us-central2-b", "ACCELERATOR": "v4-32"},
            [
                "gcloud compute tpus tpu-vm create pod --zone us-central2-b "
                "--accelerator-type v4-32",
                "tpu-vm scp --recurse --zone us-central2-b --worker=all . pod:",
                "--worker=all --command cd\\ ~/mvl\\ \\&\\&\\ pip\\ install",
                "python\\ -m\\ mvl.main\\ --config\\ configs/clip.py:paper\\ "
                "--workdir\\ gs://b/run\\ --distributed\\ --config.batch_size=64",
            ],
        ),
        (
            "launch/gpu.sh",
            {},
            [
                "python -m mvl.main --config configs/clip.py:paper --workdir "
                "gs://b/run --config.batch_size=64"
            ],
        ),
        (
            "launch/slurm.sbatch",
            {},
            [
                "srun --ntasks-per-node=1 python -m mvl.main --config configs/clip.py:paper "
                "--workdir gs://b/run --distributed --config.batch_size=64"
            ],
        ),
    ],
)
def test_launch_script_dry_runs_print_every_command(script, env, expected):
    result = subprocess.run(
        [
            "bash",
            script,
            "--dry-run",
            "configs/clip.py:paper",
            "gs://b/run",
            "--config.batch_size=64",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    lines = result.stdout.splitlines()
    assert len(lines) >= len(expected)
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, lines)


def test_tpu_pod_launch_names_a_missing_setting():
    result = subprocess.run(
        ["bash", "launch/tpu_pod.sh", "--dry-run", "configs/clip.py:paper", "gs://b/run"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("TPU_NAME", "ZONE")},
    )
    assert result.returncode != 0 and "TPU_NAME" in result.stderr


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
    wider = main_args(
        tokenizer_path, workdir, "clip", total_steps=4, **{"model.image.mlp_dim": "96"}
    )
    assert mvl_main.main(wider) == 2  # the run identity refuses it first
    assert "model.image.mlp_dim 64 -> 96" in capsys.readouterr().err
    # Accepting the change still cannot load a checkpoint of another shape.
    assert mvl_main.main(wider + ["--allow_config_change"]) == 2
    err = capsys.readouterr().err
    assert "does not match this config's model" in err
    assert "image/encoder/block0/mlp/fc1/kernel saved (32, 64) vs model (32, 96)" in err


def test_an_evaluator_from_outside_mvl_runs_at_its_own_cadence(tokenizer_path, tmp_path):
    """An evaluator written outside mvl (tests/outside_evaluator.py), declared from the
    command line with its own every_steps, runs through python -m mvl.main at that
    cadence while the method's own evaluators keep eval.every_steps (0: at the end)."""
    from mvl.tables.tensorboard_scalars import read_scalars

    workdir = tmp_path / "run"
    declared = {
        "evals.rows.type": "tests.outside_evaluator:RowsSeen",
        "evals.rows.every_steps": "1",
        "evals.rows.scale": "2.0",
        "evals.zeroshot.type": "none",  # a declared evaluator removed
    }
    args = main_args(tokenizer_path, workdir, "clip", total_steps=2, **declared)
    assert mvl_main.main(args) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    assert final["rows_seen/count"] == 2.0 * 64 and final["rows_seen/has_params"] == 1.0
    assert "retrieval/image_to_text/r@1" in final
    assert not any(key.startswith("zeroshot/") for key in final)
    scalars = read_scalars(str(workdir))
    assert sorted(scalars["eval/rows_seen/count"]) == [1, 2]
    assert sorted(scalars["eval/retrieval/image_to_text/r@1"]) == [2]
