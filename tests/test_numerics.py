"""A NaN loss or gradient skips the update and is counted; too many in a row halt the
run with a message that names the step and the last checkpoint."""

import jax
import numpy as np

from mvl import main as mvl_main
from mvl.train.loop import Trainer
from tests.test_main import main_args


def nan_images(batch):
    return {**batch, "image": batch["image"] * np.nan}


def test_a_non_finite_step_changes_nothing_but_the_step_counter(tiny_config, tmp_path):
    trainer = Trainer(tiny_config("clip"), str(tmp_path))
    before = jax.device_get(trainer.state)
    metrics = jax.device_get(trainer.step(nan_images(trainer.next_batch())))
    assert metrics["skipped"] == 1.0 and not np.isfinite(metrics["loss"])
    after = jax.device_get(trainer.state)
    assert int(after.step) == int(before.step) + 1
    for old, new in zip(jax.tree.leaves(before.params), jax.tree.leaves(after.params)):
        np.testing.assert_array_equal(old, new)
    for old, new in zip(jax.tree.leaves(before.opt_state), jax.tree.leaves(after.opt_state)):
        np.testing.assert_array_equal(old, new)
    # The optimizer's own count did not advance either, so the schedule is not consumed:
    # the next step is warmup step 0 (learning rate 0), the one after moves parameters.
    for _ in range(2):
        healthy = jax.device_get(trainer.step(trainer.next_batch()))
        assert healthy["skipped"] == 0.0 and np.isfinite(healthy["loss"])
    moved = jax.tree.map(np.array_equal, after.params, jax.device_get(trainer.state.params))
    assert not all(jax.tree.leaves(moved))


def test_too_many_non_finite_steps_in_a_row_halt_naming_step_and_checkpoint(
    tokenizer_path, tmp_path, monkeypatch, capsys
):
    real_next_batch = Trainer.next_batch

    def poisoned_after_step_3(self):
        batch = real_next_batch(self)
        return nan_images(batch) if int(self.state.step) >= 3 else batch

    monkeypatch.setattr(Trainer, "next_batch", poisoned_after_step_3)
    workdir = tmp_path / "run"
    args = main_args(
        tokenizer_path, workdir, "clip", total_steps=20, **{"optim.max_skipped_in_a_row": "3"}
    )
    assert mvl_main.main(args) == 2
    err = capsys.readouterr().err
    assert "non-finite loss or gradient in 3 steps in a row, the last at step 6" in err, err
    # Skipped steps keep the last good parameters, so checkpoints saved during them
    # (every 2 steps here) are good ones to resume from.
    last = err.split(f"last checkpoint: {workdir / 'checkpoints'}/")[1].split(".")[0]
    assert int(last) in (4, 6), err
