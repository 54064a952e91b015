"""Checkpoint integrity and retention: leftovers of an interrupted save are removed, a
damaged checkpoint is set aside for the previous one, the newest N and the best by a
metric are kept, a checkpoint restores onto another mesh, and resuming with another
tokenizer is refused before anything is built."""

import glob
import json
import os

import jax
import numpy as np
import pytest

from mvl.data import pipeline
from mvl.data import tokenizer as tokenizer_lib
from mvl.runtime.checkpoint import checksums
from mvl.runtime.errors import UserError
from mvl.train import loop
from mvl.train.loop import Trainer


def run_and_save(trainer: Trainer, steps: int):
    for _ in range(steps):
        trainer.step(trainer.next_batch())
    assert trainer.save()
    trainer.checkpointer.wait()


def test_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_used(tiny_config, tmp_path):
    cfg = tiny_config("clip")
    trainer = Trainer(cfg, str(tmp_path))
    run_and_save(trainer, 2)
    params_at_2 = jax.device_get(trainer.state.params)
    run_and_save(trainer, 2)
    newest = tmp_path / "checkpoints" / "4"
    assert checksums.verify(str(newest))  # every committed checkpoint has its manifest
    victim = max(glob.glob(f"{newest}/state/**/d/*", recursive=True), key=os.path.getsize)
    with open(victim, "r+b") as f:  # flip bytes in the middle of an array file
        f.seek(os.path.getsize(victim) // 2)
        f.write(b"\x00\xff" * 16)
    # An unfinished save, as a kill -9 mid-write leaves it.
    leftover = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1234"
    leftover.mkdir()

    resumed = Trainer(cfg, str(tmp_path))
    step, _ = resumed.restore()
    assert step == 2
    for old, new in zip(jax.tree.leaves(params_at_2), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(old, new)
    assert [p.split("-")[0] for p in os.listdir(tmp_path / "unreadable_checkpoints")] == ["4"]
    resumed.checkpointer.wait()
    assert not leftover.exists()


def test_keeps_the_newest_and_the_best_by_a_metric(tiny_config, tmp_path):
    # "max" of the training loss: the best checkpoint is an early one, not the newest.
    cfg = tiny_config(
        "clip",
        **{
            "total_steps": "10",
            "log_every_steps": "2",
            "checkpoint.every_steps": "2",
            "checkpoint.max_to_keep": "1",
            "checkpoint.best_metric": "train/loss",
            "checkpoint.best_mode": "max",
        },
    )
    loop.train_and_evaluate(cfg, str(tmp_path))
    losses = {}
    for step in range(2, 11, 2):
        metrics = glob.glob(str(tmp_path / "checkpoints" / str(step) / "metrics" / "metrics"))
        if metrics:
            losses[step] = json.load(open(metrics[0]))["train/loss"]
    kept = sorted(int(p) for p in os.listdir(tmp_path / "checkpoints") if p.isdigit())
    assert 10 in kept and len(kept) <= 2
    best = [s for s in kept if s != 10]
    if best:  # the best is the one of highest loss among all that were saved
        assert losses[best[0]] > losses[10]


def test_best_metric_must_be_reported(tiny_config, tmp_path):
    cfg = tiny_config("clip", **{"checkpoint.best_metric": "train/no_such_metric"})
    with pytest.raises(UserError, match="train/no_such_metric.* is not among the reported"):
        loop.train_and_evaluate(cfg, str(tmp_path))


def test_a_checkpoint_restores_onto_another_mesh(tiny_config, tmp_path):
    data_parallel = Trainer(tiny_config("clip", **{"mesh.data": "8"}), str(tmp_path))
    run_and_save(data_parallel, 2)
    saved = jax.device_get(data_parallel.state)
    overrides = {"mesh.data": "2", "mesh.fsdp": "2", "mesh.tensor": "2"}
    mixed = Trainer(tiny_config("clip", **overrides), str(tmp_path))
    assert mixed.restore()[0] == 2
    assert mixed.mesh.shape == {"data": 2, "fsdp": 2, "tensor": 2}
    for old, new in zip(jax.tree.leaves(saved), jax.tree.leaves(jax.device_get(mixed.state))):
        np.testing.assert_array_equal(old, new)


def test_resuming_with_another_tokenizer_is_refused_before_building(
    tiny_config, tmp_path, monkeypatch
):
    trainer = Trainer(tiny_config("clip"), str(tmp_path / "run"))
    run_and_save(trainer, 1)
    other = str(tmp_path / "other.model")
    source = pipeline.make_source("shapes", "train", size=2000, seed=1, image_size=32)
    captions = tokenizer_lib.captions_from_source(source, 1000)
    tokenizer_lib.train_tokenizer(captions, other, vocab_size=120)

    def no_building(*args):
        raise AssertionError("the model was built before the tokenizer was checked")

    monkeypatch.setattr(loop, "build_program", no_building)
    cfg = tiny_config("clip", **{"data.tokenizer": other, "data.vocab_size": "120"})
    with pytest.raises(UserError, match=r"data.tokenizer: .*other.model \(vocab 120.*vocab 128"):
        Trainer(cfg, str(tmp_path / "run"))

    # Starting a new run from that one (init.checkpoint) with the other tokenizer is
    # refused too: its token embeddings were learned for other ids.
    monkeypatch.undo()
    cfg = tiny_config(
        "clip",
        **{
            "data.tokenizer": other,
            "data.vocab_size": "120",
            "init.checkpoint": str(tmp_path / "run"),
        },
    )
    with pytest.raises(UserError, match=r"not the tokenizer init.checkpoint .*run was trained"):
        Trainer(cfg, str(tmp_path / "new")).restore()


def test_a_fine_tuning_config_without_its_pretrained_run_is_named():
    from mvl import config as config_lib
    from mvl import validate

    cfg = config_lib.load_config("configs/retrieval_finetune.py:demo")
    with pytest.raises(config_lib.ConfigError, match="init.checkpoint=''.*fine-tunes a pretrained"):
        validate.validate(cfg)
