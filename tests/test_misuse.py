"""Faults and misuse through the real commands, in subprocesses: each case ends with the
right exit status, one actionable line on stderr (no traceback), and nothing lost.

The training cases share one uninterrupted reference run (CLIP, TINY, 6 steps, an
evaluation every 2 that fails on purpose at step 2): its losses are what every
interrupted and resumed run must reproduce.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mvl import config as config_lib
from mvl.runtime import run_identity
from mvl.tables.tensorboard_scalars import read_scalars
from tests.test_multihost import ROOT, command, environment

STEPS = 6


def run(args, faults: str = "", timeout: int = 600) -> subprocess.CompletedProcess:
    env = environment(8)
    if faults:
        env["MVL_INJECT_FAULTS"] = faults
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def train(tokenizer_path, workdir, *extra, steps=STEPS, faults=""):
    return run(command(tokenizer_path, workdir, steps, *extra), faults)


def module(name: str, *args) -> list[str]:
    return [sys.executable, "-m", name, *args]


def one_line(result) -> str:
    """The single non-empty stderr line (asserting there is exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, (
        f"stderr is not one line:\n{result.stderr[-3000:]}\nstdout:\n{result.stdout[-2000:]}"
    )
    return lines[0]


def losses(workdir) -> dict[int, float]:
    return read_scalars(str(workdir)).get("train/loss", {})


def checkpoints(workdir) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


@pytest.fixture(scope="module")
def reference(tokenizer_path, tmp_path_factory):
    """An uninterrupted run whose evaluation at step 2 fails (eval.on_failure='continue')."""
    workdir = tmp_path_factory.mktemp("misuse") / "reference"
    every = "--config.eval.every_steps=2"
    result = train(tokenizer_path, workdir, every, faults="eval_fails_at=2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result


@pytest.mark.slow(minutes=1.5)
def test_a_failed_evaluation_is_one_line_and_training_goes_on(reference):
    workdir, result = reference
    line = one_line(result)
    assert line.startswith("mvl: warning: evaluation at step 2 failed (RuntimeError: fault")
    assert "eval_failures.log" in line and "training goes on" in line
    log = (workdir / "eval_failures.log").read_text()
    assert "Traceback" in log and "evaluation at step 2" in log
    assert checkpoints(workdir) == [2, 4, 6]  # step 2 saved before its evaluation
    assert (workdir / "eval_final.json").exists()
    assert "[eval 4/6]" in result.stdout and "[eval 2/6]" not in result.stdout
    # Start-up phase lines, then a progress line after the very first step.
    for phase in ("imports", "tokenizer", "model init", "data", "restore", "compile"):
        assert f"[start] {phase} " in result.stdout, result.stdout[:3000]
    lines = result.stdout.splitlines()
    first_train = next(i for i, line in enumerate(lines) if line.startswith("[train "))
    assert lines[first_train].startswith(f"[train 1/{STEPS}]")
    assert lines[0].startswith("mvl: configs/clip.py:demo -> ")


@pytest.mark.slow(minutes=1.5)
def test_eval_failure_stop_saves_first_and_exits_1(tokenizer_path, tmp_path):
    workdir = tmp_path / "run"
    extra = ("--config.eval.every_steps=2", "--config.eval.on_failure=stop")
    result = train(tokenizer_path, workdir, *extra, faults="eval_fails_at=4")
    assert result.returncode == 1
    line = one_line(result)
    assert "evaluation at step 4 failed" in line and f"{workdir}/checkpoints/4 is saved" in line
    assert checkpoints(workdir) == [2, 4]


@pytest.mark.slow(minutes=2.5)
def test_a_full_disk_keeps_the_previous_checkpoint_and_the_resume_matches(
    tokenizer_path, tmp_path, reference
):
    workdir = tmp_path / "run"
    every = "--config.eval.every_steps=2"
    full = train(tokenizer_path, workdir, every, faults="disk_full_at_save=4")
    assert full.returncode == 1
    line = one_line(full)
    assert line.startswith(f"mvl: error: cannot write checkpoint {workdir}/checkpoints/4: ")
    assert "No space left on device" in line and "MiB free" in line
    assert f"the previous checkpoint {workdir}/checkpoints/2 is intact" in line
    assert checkpoints(workdir) == [2]

    resumed = train(tokenizer_path, workdir, every)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {workdir}/checkpoints/2" in resumed.stdout
    expected = losses(reference[0])
    assert sorted(expected) == [2, 4, 6]
    assert losses(workdir) == expected  # bit for bit


@pytest.mark.slow(minutes=1.5)
def test_unreadable_checkpoints_are_said_and_the_run_starts_over(tokenizer_path, reference):
    workdir = reference[0].parent / "damaged"
    shutil.copytree(reference[0], workdir)
    os.remove(workdir / "eval_final.json")
    shutil.rmtree(workdir / "tensorboard")
    for step in checkpoints(workdir):  # flip bytes in every checkpoint's largest file
        files = [
            os.path.join(root, name)
            for root, _, names in os.walk(workdir / "checkpoints" / str(step) / "state")
            for name in names
        ]
        victim = max(files, key=os.path.getsize)
        with open(victim, "r+b") as f:
            f.seek(os.path.getsize(victim) // 2)
            f.write(b"\x00\xff" * 16)
    result = train(tokenizer_path, workdir, "--config.eval.every_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no readable checkpoint" in result.stdout and "starting from step 0" in result.stdout
    assert losses(workdir) == losses(reference[0])


@pytest.mark.slow(minutes=1.5)
def test_a_changed_config_is_refused_with_its_diff_then_accepted_on_request(
    tokenizer_path, reference
):
    workdir = reference[0].parent / "changed"
    shutil.copytree(reference[0], workdir)
    changed = ("--config.eval.every_steps=2", "--config.optim.lr=0.01")
    refused = train(tokenizer_path, workdir, *changed, steps=8)
    assert refused.returncode == 2
    line = one_line(refused)
    assert "optim.lr 0.001 -> 0.01" in line and "--allow_config_change" in line
    assert "total_steps" not in line  # a longer run is a resumable change
    assert checkpoints(workdir) == [2, 4, 6] and "[train" not in refused.stdout

    accepted = train(tokenizer_path, workdir, *changed, "--allow_config_change", steps=8)
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "resumed from" in accepted.stdout and checkpoints(workdir)[-1] == 8
    record = [json.loads(line) for line in open(workdir / run_identity.CHANGES_FILE)]
    assert record[-1]["changed"]["optim.lr"] == {"old": 0.001, "new": 0.01}
    assert record[-1]["changed"]["total_steps"] == {"old": 6, "new": 8}
    assert json.loads((workdir / "config.json").read_text())["optim"]["lr"] == 0.01


def interrupt_when(args, marker: str, delay: float = 1.0, **env_overrides) -> tuple:
    """Starts `args`, sends SIGINT `delay` seconds after a stdout line containing
    `marker`; returns (result-like, seconds from the signal to the exit)."""
    env = {**environment(8), **env_overrides}
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            break
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    took = time.time() - sent
    return subprocess.CompletedProcess(args, proc.returncode, "".join(seen) + out, err), took


@pytest.mark.slow(minutes=1)
def test_ctrl_c_during_compilation_exits_130_at_once(tokenizer_path, tmp_path):
    workdir = tmp_path / "run"
    # A compilation cache of its own: with the session's, this program (compiled by the
    # other tests) would load in a blink and the signal would come during training.
    result, took = interrupt_when(
        command(tokenizer_path, workdir, STEPS),
        "[start] first batch",
        delay=0.2,
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "cache"),
    )
    assert result.returncode == 130, result.stderr[-3000:]
    line = one_line(result)
    assert line.startswith("mvl: interrupted: Ctrl-C during compile") and "nothing to save" in line
    assert took < 10  # not after the compilation finishes


@pytest.mark.slow(minutes=1.5)
def test_ctrl_c_while_training_saves_and_exits_130(tokenizer_path, tmp_path):
    workdir = tmp_path / "run"
    slow = ("--config.checkpoint.every_steps=1000", "--config.log_every_steps=1")
    result, _ = interrupt_when(command(tokenizer_path, workdir, 500, *slow), "[train 1/")
    assert result.returncode == 130, result.stderr[-3000:]
    line = one_line(result)
    assert line.startswith("mvl: interrupted: Ctrl-C: stopped after step ")
    step = int(line.split("after step ")[1].split(";")[0])
    assert checkpoints(workdir) == [step]


@pytest.mark.slow(minutes=1.5)
def test_ctrl_c_during_an_evaluation_keeps_its_checkpoint(tokenizer_path, tmp_path):
    """Step 2's checkpoint is written before its evaluation: Ctrl-C there exits at once
    (or, if it came before the evaluation began, right after it, saving nothing new)."""
    workdir = tmp_path / "run"
    every = ("--config.eval.every_steps=2", "--config.checkpoint.every_steps=1000")
    result, _ = interrupt_when(
        command(tokenizer_path, workdir, 500, *every),
        "[train 2/",
        delay=0.3,
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "cache"),  # the evaluation compiles: seconds
    )
    assert result.returncode == 130, result.stderr[-3000:]
    line = one_line(result)
    assert line.startswith("mvl: interrupted: Ctrl-C")
    assert f"{workdir}/checkpoints/2" in line or f"saved in {workdir}/checkpoints" in line
    assert checkpoints(workdir) == [2]


@pytest.mark.slow(minutes=0.5)
def test_evaluate_with_a_config_that_does_not_match_the_run(tokenizer_path, reference):
    result = run(
        module(
            "mvl.evaluate",
            "--checkpoint",
            str(reference[0]),
            "--config",
            "configs/maskvlm.py:demo",
            f"--config.data.tokenizer={tokenizer_path}",
        )
    )
    assert result.returncode == 2
    line = one_line(result)
    assert "does not match this config's model: missing in checkpoint" in line
    assert "leave out --config" in line


def test_a_changed_config_is_refused_before_anything_is_built(tokenizer_path, tmp_path):
    """The refusal costs seconds: config.json as a first start wrote it, then a rerun
    with another learning rate."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    started = command(tokenizer_path, workdir, STEPS)
    cfg = config_lib.load_config("configs/clip.py:demo")
    overrides = {
        a[len("--config.") :].split("=")[0]: a.split("=", 1)[1]
        for a in started
        if a.startswith("--config.")
    }
    config_lib.apply_overrides(cfg, overrides)
    (workdir / "config.json").write_text(json.dumps(run_identity.as_json(cfg)))
    result = run(started + ["--config.optim.lr=0.5", "--config.mask.image.ratio=0.5"])
    assert result.returncode == 2
    line = one_line(result)
    assert "changed: mask.image.ratio 0.0 -> 0.5, optim.lr 0.001 -> 0.5." in line
    assert "[start] tokenizer" not in result.stdout


def test_embed_with_a_missing_input_file(tmp_path):
    missing = tmp_path / "captions.txt"
    result = run(
        module("mvl.embed", "--checkpoint", str(tmp_path), "--texts", str(missing), "--out", "x")
    )
    assert result.returncode == 2
    assert one_line(result) == f"mvl.embed: error: --texts {missing}: no such file"


def test_data_convert_names_its_own_flags(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text("path,caption\na.jpg,a cat\n")
    result = run(
        module(
            "mvl.data.convert",
            "--from",
            "csv",
            "--input",
            str(table),
            "--output",
            str(tmp_path / "out"),
        )
    )
    assert result.returncode == 2
    line = one_line(result)
    assert "no column 'filepath'" in line and "--image_key / --caption_key" in line
    assert "data.table" not in line


def test_convert_export_of_a_missing_run(tmp_path):
    result = run(
        module(
            "mvl.weights",
            "export",
            "--checkpoint",
            str(tmp_path / "no_run"),
            "--out",
            "m.safetensors",
        )
    )
    assert result.returncode == 2
    assert one_line(result).startswith("mvl.weights: error: ")


def test_bad_eval_on_failure_is_named(tokenizer_path, tmp_path, capsys):
    from mvl import main as mvl_main

    args = command(tokenizer_path, tmp_path / "run", STEPS, "--config.eval.on_failure=retry")
    assert mvl_main.main(args[3:]) == 2  # in this process: the check comes before building
    assert "eval.on_failure='retry': use 'continue' or 'stop'" in capsys.readouterr().err


def test_run_main_gives_every_command_one_line_and_its_status(capsys):
    from mvl.runtime import cli
    from mvl.runtime.errors import RunFailed, UserError

    def fails(error):
        def work(argv):
            raise error

        return work

    assert cli.run_main("mvl.x", fails(UserError("config a.b: bad\nvalue")), []) == 2
    assert capsys.readouterr().err == "mvl.x: error: config a.b: bad value\n"
    assert cli.run_main("mvl.x", fails(RunFailed("cannot write")), []) == 1
    assert cli.run_main("mvl.x", fails(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "mvl.x: interrupted: Ctrl-C"
    assert cli.run_main("mvl.x", fails(ValueError("no")), [], also=(ValueError,)) == 2
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_main("mvl.x", fails(ZeroDivisionError()), [])


def test_run_identity_lets_resumable_keys_change_and_records_allowed_changes(tmp_path):
    from mvl.runtime.errors import UserError

    def identity(allow=False, **overrides):
        cfg = config_lib.load_config("configs/clip.py:demo")
        config_lib.apply_overrides(cfg, overrides)
        return run_identity.RunIdentity(cfg, str(tmp_path), allow)

    first = identity()
    first.check()
    first.keep()
    longer = identity(**{"total_steps": "900", "checkpoint.every_steps": "50"})
    longer.check()  # resumable: no refusal
    # keys added to mvl after the run started, at values that compute what it computed
    saved = json.loads((tmp_path / run_identity.CONFIG_FILE).read_text())
    del saved["model"]["image"]["positions"], saved["imports"]
    (tmp_path / run_identity.CONFIG_FILE).write_text(json.dumps(saved))
    identity(**{"total_steps": "900"}).check()
    with pytest.raises(UserError, match=r"changed: model.image.positions None -> 'sincos2d'"):
        identity(**{"total_steps": "900", "model.image.positions": "sincos2d"}).check()
    # another machine's layout of the same computation (its config.fit entry)
    identity(**{"total_steps": "900", "model.remat": "full", "mesh.fsdp": "2"}).check()
    longer.keep()
    other = identity(**{"optim.lr": "0.5", "total_steps": "900"})
    with pytest.raises(UserError, match=r"changed: optim.lr 0.001 -> 0.5\. Rerun"):
        other.check()
    allowed = identity(True, **{"optim.lr": "0.5", "total_steps": "900"})
    allowed.check()
    allowed.keep()
    record = [json.loads(line) for line in open(tmp_path / run_identity.CHANGES_FILE)]
    assert [r["allowed_by_flag"] for r in record] == [False, True]
    assert record[0]["changed"]["total_steps"] == {"old": 300, "new": 900}
    assert record[1]["changed"] == {
        "optim.lr": {"old": 0.001, "new": 0.5},
        "checkpoint.every_steps": {"old": 50, "new": 100},  # back to the default
    }
    identity(**{"optim.lr": "0.5", "total_steps": "900"}).check()  # the run's config now


def test_a_run_started_before_a_key_existed_resumes_when_the_key_is_at_its_empty_default():
    old = {"optim": {"lr": 0.001}}  # config.json of a run started before `imports` existed
    assert run_identity.changes(old, {"optim": {"lr": 0.001}, "imports": []}) == {}
    assert run_identity.changes(old, {"optim": {"lr": 0.001}, "imports": ["my.py"]}) == {
        "imports": (None, ["my.py"])
    }


@pytest.mark.slow(minutes=1)
def test_8_devices_with_an_eval_set_that_divides_nothing_trains_evaluates_and_saves(
    tokenizer_path, tmp_path
):
    """The issue's crash: 8 devices, eval.batch_size 250 (the default) and 61 held-out
    pairs, neither of which divides 8 or the other; it used to die at the final
    evaluation with IndivisibleError and no checkpoint."""
    workdir = tmp_path / "run"
    result = train(
        tokenizer_path,
        workdir,
        "--config.eval.batch_size=250",
        "--config.data.eval_size=61",
        steps=4,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(workdir / "eval_final.json") as f:
        final = json.load(f)
    assert 0.0 <= final["retrieval/image_to_text/r@1"] <= 1.0
    assert final["retrieval/chance/r@1"] == pytest.approx(1 / 61)
    assert checkpoints(workdir)[-1] == 4


def test_a_typo_in_the_config_argument_is_refused_in_one_line(tmp_path):
    result = run(
        module("mvl.main", "--config", "configs/clip.py:demoo", "--workdir", str(tmp_path))
    )
    assert result.returncode == 2
    line = one_line(result)
    assert "'demoo'" in line and "accepted" in line and "demo | paper" in line
    assert not os.path.exists(tmp_path / "config.json")
