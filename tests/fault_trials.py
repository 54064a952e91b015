"""Fault trials: runs killed, stopped and damaged at random moments, resumed with the same
command, and compared with an uninterrupted run of the same length.

Each trial interrupts a tiny MaskCLIP run (EMA teacher, masks from the step rng, text
decoder, logging and evaluation intervals that straddle the checkpoints) three times,
each time one of:
  kill_after_step    kill -9 once step N is done
  kill_while_saving  kill -9 right after step N's checkpoint is dispatched (mid-write)
  term_after_step    SIGTERM after step N (the preemption path: save, exit 0)
  kill_at_random     kill -9 from outside after a random delay (compile, step, save, eval)
and after some interruptions damages the newest checkpoint's largest file. It survives
when the final train state is bitwise equal to the reference's, every logged scalar and
the final evaluation are equal, and each resume started from the newest intact
checkpoint (lost work: the steps since it, never more).

  python -m tests.fault_trials --trials 10 --workdir /tmp/mvl_faults

prints one line per trial and the totals. tests/test_faults.py runs one trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from mvl.tables.tensorboard_scalars import read_scalars

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("kill_after_step", "kill_while_saving", "term_after_step", "kill_at_random")
STEPS, CHECKPOINT_EVERY, LOG_EVERY, EVAL_EVERY = 12, 3, 4, 5
# Wall-clock tags that differ between any two runs.
TIMING_TAGS = ("steps_per_sec", "uptime")


def tiny_overrides(tokenizer_path: str) -> dict[str, str]:
    from tests.conftest import tiny_for

    return {
        **tiny_for("maskclip"),
        "data.tokenizer": tokenizer_path,
        "total_steps": str(STEPS),
        "checkpoint.every_steps": str(CHECKPOINT_EVERY),
        "checkpoint.max_to_keep": "2",
        "log_every_steps": str(LOG_EVERY),
        "eval.every_steps": str(EVAL_EVERY),
    }


def command(tokenizer_path: str, workdir: str) -> list[str]:
    overrides = tiny_overrides(tokenizer_path)
    return [
        sys.executable,
        "-m",
        "mvl.main",
        "--config",
        "configs/maskclip.py:demo",
        "--workdir",
        workdir,
        *[f"--config.{k}={v}" for k, v in overrides.items()],
    ]


def environment(cache_dir: str, faults: str = "") -> dict:
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=8",
        "PYTHONPATH": ROOT,
        "JAX_COMPILATION_CACHE_DIR": cache_dir,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
        "MVL_INJECT_FAULTS": faults,
    }


def run(tokenizer_path, workdir, cache_dir, faults="", kill_after_s=None) -> tuple[int, str]:
    """One segment: the run's command, optionally killed from outside after a delay."""
    process = subprocess.Popen(
        command(tokenizer_path, workdir),
        cwd=ROOT,
        env=environment(cache_dir, faults),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=kill_after_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
    return process.returncode, output


def complete_checkpoints(workdir: str) -> list[int]:
    """Steps orbax committed (a save killed mid-write leaves only a temporary folder)."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def damage_newest(workdir: str, rng: np.random.Generator) -> int:
    """Flips 64 bytes in the middle of the newest checkpoint's largest file."""
    step = complete_checkpoints(workdir)[-1]
    files = glob.glob(os.path.join(workdir, "checkpoints", str(step), "**", "*"), recursive=True)
    victim = max((f for f in files if os.path.isfile(f)), key=os.path.getsize)
    data = bytearray(open(victim, "rb").read())
    start = int(rng.integers(0, max(1, len(data) - 64)))
    for i in range(start, min(start + 64, len(data))):
        data[i] ^= 0xFF
    with open(victim, "wb") as f:
        f.write(bytes(data))
    return step


def scalars(workdir: str) -> dict[tuple[str, int], float]:
    """Every logged scalar but timings, the last write winning (a resumed run rewrites
    the steps between its checkpoint and the interruption)."""
    logged = read_scalars(workdir, skip_tags=TIMING_TAGS)
    return {(tag, step): value for tag, steps in logged.items() for step, value in steps.items()}


def final_state(workdir: str) -> dict[str, np.ndarray]:
    import jax

    from mvl.runtime import checkpoint

    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    step, state = checkpoint.load_state(workdir, device)
    assert step == STEPS, f"{workdir}: newest checkpoint is step {step}, not {STEPS}"
    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(state)
    }


@dataclasses.dataclass
class Interruption:
    kind: str
    step: int | None  # the step it was aimed at (None: a wall-clock kill)
    complete_at_stop: list[int]  # committed checkpoints when the process ended
    damaged: int | None = None  # the checkpoint damaged afterwards, if any
    resumed_from: int | None = None
    intact_expected: int | None = None
    happened: bool = True

    @property
    def lost_steps(self) -> int | None:
        if self.step is None or not self.happened:
            return None
        return self.step - (self.resumed_from or 0)  # None: started afresh, from step 0


@dataclasses.dataclass
class Trial:
    seed: int
    interruptions: list[Interruption]
    identical_state: bool = False
    identical_scalars: bool = False
    identical_eval: bool = False
    resumed_from_newest_intact: bool = False
    error: str = ""

    @property
    def survived(self) -> bool:
        return (
            self.identical_state
            and self.identical_scalars
            and self.identical_eval
            and self.resumed_from_newest_intact
            and not self.error
        )


class Reference:
    """The uninterrupted run every trial is compared with."""

    def __init__(self, tokenizer_path: str, workdir: str, cache_dir: str):
        started = time.time()
        code, output = run(tokenizer_path, workdir, cache_dir)
        if code:
            raise RuntimeError(f"reference run failed:\n{output[-3000:]}")
        self.seconds = time.time() - started
        self.state = final_state(workdir)
        self.scalars = scalars(workdir)
        with open(os.path.join(workdir, "eval_final.json")) as f:
            self.eval = json.load(f)


def plan(rng: np.random.Generator) -> list[tuple[str, int | None, bool]]:
    """Three (kind, step, damage the newest checkpoint afterwards) at random."""
    steps = sorted(rng.choice(np.arange(1, STEPS), size=3, replace=False).tolist())
    chosen = []
    for step in steps:
        kind = str(rng.choice(KINDS))
        if kind == "kill_while_saving":  # aim at a checkpoint step (not the last)
            step = max(CHECKPOINT_EVERY, (step // CHECKPOINT_EVERY) * CHECKPOINT_EVERY)
        chosen.append((kind, None if kind == "kill_at_random" else int(step), rng.random() < 0.3))
    return chosen


def run_trial(seed, tokenizer_path, workdir, cache_dir, reference, chosen=None) -> Trial:
    rng = np.random.default_rng(seed)
    chosen = chosen or plan(rng)
    shutil.rmtree(workdir, ignore_errors=True)
    trial = Trial(seed, [])
    resumed_log = re.compile(r"resumed from .*/checkpoints/(\d+)")
    for kind, step, damage in chosen:
        if kind == "kill_at_random":
            delay = float(rng.uniform(0.1, 0.7) * reference.seconds)
            code, output = run(tokenizer_path, workdir, cache_dir, kill_after_s=delay)
        else:
            code, output = run(tokenizer_path, workdir, cache_dir, f"{kind}={step}")
        interruption = Interruption(kind, step, complete_checkpoints(workdir))
        trial.interruptions.append(interruption)
        # exit 0: a SIGTERM, or a run that finished first (a resume already past the
        # aimed step, or a late random kill): then nothing was interrupted.
        stopped = "stopped after" in output
        if code not in (0, -signal.SIGKILL) or (
            code == 0 and not stopped and not _finished(workdir)
        ):
            trial.error = f"{kind}@{step}: exit {code}\n{output[-2000:]}"
            return trial
        interruption.happened = code == -signal.SIGKILL or stopped
        if _previous(trial) is not None:
            _previous(trial).resumed_from = _resumed(resumed_log, output)
        intact = [s for s in interruption.complete_at_stop]
        if damage and intact:
            interruption.damaged = damage_newest(workdir, rng)
            intact = intact[:-1]
        interruption.intact_expected = intact[-1] if intact else None
    code, output = run(tokenizer_path, workdir, cache_dir)
    if code:
        trial.error = f"final resume: exit {code}\n{output[-2000:]}"
        return trial
    trial.interruptions[-1].resumed_from = _resumed(resumed_log, output)
    trial.resumed_from_newest_intact = all(
        (i.resumed_from or 0) == (i.intact_expected or 0) for i in trial.interruptions
    )
    state = final_state(workdir)
    trial.identical_state = state.keys() == reference.state.keys() and all(
        np.array_equal(state[k], reference.state[k]) for k in state
    )
    trial.identical_scalars = scalars(workdir) == reference.scalars
    with open(os.path.join(workdir, "eval_final.json")) as f:
        trial.identical_eval = json.load(f) == reference.eval
    return trial


def _finished(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, "eval_final.json"))


def _previous(trial: Trial) -> Interruption | None:
    return trial.interruptions[-2] if len(trial.interruptions) > 1 else None


def _resumed(pattern, output: str) -> int | None:
    found = pattern.findall(output)
    return int(found[-1]) if found else None


def describe(trial: Trial) -> str:
    parts = []
    for i in trial.interruptions:
        aimed = f"@{i.step}" if i.step is not None else ""
        damaged = f" damaged {i.damaged}" if i.damaged is not None else ""
        lost = f" lost {i.lost_steps}" if i.lost_steps is not None else ""
        missed = "" if i.happened else " (finished first)"
        parts.append(f"{i.kind}{aimed}{missed}{damaged} -> resumed {i.resumed_from}{lost}")
    verdict = "survived" if trial.survived else f"FAILED {trial.error[:200]}"
    return f"trial {trial.seed}: {'; '.join(parts)}: {verdict}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    )
    from mvl.data import pipeline, tokenizer

    os.makedirs(args.workdir, exist_ok=True)
    tokenizer_path = os.path.join(args.workdir, "tokenizer.model")
    if not os.path.exists(tokenizer_path):
        source = pipeline.make_source("shapes", "train", size=4000, seed=0, image_size=32)
        captions = tokenizer.captions_from_source(source, 2000)
        tokenizer.train_tokenizer(captions, tokenizer_path, vocab_size=128)
    cache_dir = os.path.join(args.workdir, "jax_cache")
    reference = Reference(tokenizer_path, os.path.join(args.workdir, "reference"), cache_dir)
    print(f"reference run: {reference.seconds:.0f}s", flush=True)
    trials = []
    for n in range(args.trials):
        trial = run_trial(
            args.seed + n, tokenizer_path, os.path.join(args.workdir, "trial"), cache_dir, reference
        )
        trials.append(trial)
        print(describe(trial), flush=True)
    interruptions = [i for t in trials for i in t.interruptions]
    counted = [i for i in interruptions if i.lost_steps is not None]  # aimed and happened
    lost = [i.lost_steps for i in counted]
    bound = [i.step - (i.intact_expected or 0) for i in counted]
    print(
        f"trials {len(trials)}, survived {sum(t.survived for t in trials)}; interruptions "
        f"{len(interruptions)} ({', '.join(f'{k} {sum(i.kind == k for i in interruptions)}' for k in KINDS)}); "
        f"checkpoints damaged {sum(i.damaged is not None for i in interruptions)}; "
        f"steps lost {sum(lost)} (bound: steps since the newest intact checkpoint, {sum(bound)})"
    )
    sys.exit(0 if all(t.survived for t in trials) else 1)


if __name__ == "__main__":
    main()
