"""SIGTERM mid-run: the step finishes, a checkpoint is saved, the process exits 0, and
the same command resumes from that step."""

import signal
import subprocess

import pytest

from tests.test_multihost import ROOT, command, environment


@pytest.mark.slow(minutes=1)
def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(tokenizer_path, tmp_path):
    workdir = tmp_path / "run"
    slow = ["--config.checkpoint.every_steps=1000", "--config.log_every_steps=1"]
    run = subprocess.Popen(
        command(tokenizer_path, workdir, 500, *slow),
        cwd=ROOT,
        env=environment(8),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in run.stdout:  # wait until training has started
        lines.append(line)
        if line.startswith("[train 1/"):
            run.send_signal(signal.SIGTERM)
            break
    rest, _ = run.communicate(timeout=300)
    output = "".join(lines) + rest
    assert run.returncode == 0, output[-3000:]
    stopped = [line for line in output.splitlines() if line.startswith("stopped after step")]
    assert stopped and "SIGTERM" in stopped[0], output[-3000:]
    step = int(stopped[0].split()[3])
    assert 1 <= step < 500
    saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == [step]  # the interval (1000) never came: this is the SIGTERM save

    resumed = subprocess.run(
        command(tokenizer_path, workdir, step + 2, *slow),
        cwd=ROOT,
        env=environment(8),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {workdir / 'checkpoints'}/{step}" in resumed.stdout
    assert (workdir / "eval_final.json").exists()
