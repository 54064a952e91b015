"""Evaluation on any device count: an eval set and batch size that divide nothing run on
8 devices (each batch padded to the mesh's batch shards, the padding dropped) and give
the metrics of 1 device; one checkpoint gives the same metrics on 1, 2, 4 and 8
devices; the same evaluation twice gives the same bits."""

import json
import os
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from mvl.runtime import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 61 held-out pairs in batches of 25: neither divides 2, 3, 4 or 8 (61 is prime).
ODD = {"data.eval_size": "61", "eval.batch_size": "25"}

# Metrics that count rows (recall, accuracy, average precision over pairs) must be
# equal; held-out losses are means whose reduction order follows the sharding.
LOSS_TOLERANCE = 1e-5


def suite_on(devices: int, trainer):
    """An EvalSuite and the trainer's state on a mesh of the first `devices` devices."""
    from mvl.evaluate.suite import EvalSuite

    cfg = trainer.cfg
    mesh = sharding.make_mesh(cfg.mesh, jax.devices()[:devices])
    here = sharding.replicated(mesh)
    teacher = trainer.state.teacher
    state = types.SimpleNamespace(
        params=jax.device_put(trainer.state.params, here),
        teacher=None if teacher is None else jax.device_put(teacher, here),
    )
    suite = EvalSuite(
        trainer.model, cfg, trainer.tokenizer, mesh, teacher_model=trainer.teacher_model
    )
    return suite, state


def assert_same_metrics(one: dict, many: dict):
    assert one.keys() == many.keys()
    for name, value in one.items():
        if name.startswith("held_out/"):
            assert many[name] == pytest.approx(value, rel=LOSS_TOLERANCE), name
        else:
            assert many[name] == value, name


def saved_run(trainer_config, run_dir):
    """A tiny run trained 2 steps and saved; returns its Trainer."""
    from mvl.train.loop import Trainer

    trainer = Trainer(trainer_config, str(run_dir))
    for _ in range(2):
        trainer.step(trainer.next_batch())
    assert trainer.save()
    trainer.checkpointer.wait()
    return trainer


def evaluate_on(devices: int, run_dir, out, hash_seed: str = "0") -> dict:
    """tests/evaluate_on_devices.py in a fresh process with `devices` CPU devices:
    {"metrics": ..., "images" / "texts" / "features" / "items": embeddings}."""
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": ROOT,
        "PYTHONHASHSEED": hash_seed,
    }
    script = os.path.join(ROOT, "tests", "evaluate_on_devices.py")
    done = subprocess.run(
        [sys.executable, script, str(run_dir), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as saved:
        assert int(saved["devices"]) == devices
        arrays = {k: saved[k] for k in saved.files if k not in ("devices", "metrics")}
        return {"metrics": json.loads(str(saved["metrics"])), **arrays}


def test_padding_rounds_up_to_the_batch_shards_and_keeps_the_rows_first():
    import ml_collections

    from mvl.evaluate import padding

    data_only = sharding.make_mesh(ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1)))
    with_tensor = sharding.make_mesh(ml_collections.ConfigDict(dict(data=2, fsdp=2, tensor=2)))
    assert padding.batch_ways(data_only) == 8 and padding.batch_ways(with_tensor) == 4
    assert [padding.padded_size(n, data_only) for n in (1, 8, 25, 61)] == [8, 8, 32, 64]
    assert padding.padded_size(5, with_tensor) == 8  # the tensor axis holds no rows
    np.testing.assert_array_equal(padding.pad_rows(np.arange(3), 6), [0, 1, 2, 2, 2, 2])
    assert padding.chunks(61, 25) == [(0, 25), (25, 50), (50, 61)]
    rows = np.arange(32 * 3, dtype=np.float32).reshape(32, 3)
    placed = padding.place(rows, sharding.batch_sharding(data_only))
    assert len(placed.addressable_shards) == 8
    np.testing.assert_array_equal(np.asarray(placed), rows)


@pytest.mark.parametrize(
    "method, overrides",
    [
        ("clip", {"evals.probe.type": "probe"}),  # retrieval, zero-shot, probe, kNN
        ("mae", {}),  # held-out losses (a last chunk of 11 rows) and the probes
    ],  # MaskVLM (ITM re-ranking) and MLIM (pair matching): the slow test below
)
def test_61_pairs_on_8_devices_give_the_metrics_of_1_device(
    tiny_config, tmp_path, method, overrides
):
    from mvl.train.loop import Trainer

    trainer = Trainer(
        tiny_config(method, **ODD, **overrides, **{"evals.probe.steps": "20"}), str(tmp_path)
    )
    trainer.step(trainer.next_batch())  # past init: embeddings that tell rows apart
    one, state_one = suite_on(1, trainer)
    eight, state_eight = suite_on(8, trainer)
    assert len(eight.data["image"]) == 61
    metrics_eight = eight.run(state_eight)
    assert_same_metrics(one.run(state_one), metrics_eight)
    if "retrieval/chance/r@1" in metrics_eight:  # every real pair counted, no padding
        assert metrics_eight["retrieval/chance/r@1"] == 1 / 61
    images = eight.data["image"]
    features_one = one.context.embedder.image_features(state_one.params, images)
    features_eight = eight.context.embedder.image_features(state_eight.params, images)
    assert features_eight.shape[0] == 61
    np.testing.assert_allclose(features_eight, features_one, atol=1e-6, rtol=1e-6)


def test_reconstructions_of_5_images_on_8_devices(tiny_config, tmp_path):
    """The loop's reconstruction grid: 5 rows on 8 devices, the same pictures as on 1."""
    from mvl.evaluate import reconstruction
    from mvl.evaluate.context import load_eval_set
    from mvl.evaluate.evaluators.reconstructions import pixel_reconstructor
    from mvl.train.loop import Trainer

    trainer = Trainer(tiny_config("maskvlm", **ODD), str(tmp_path))
    _, data = load_eval_set(trainer.cfg, trainer.tokenizer)
    data = {k: data[k][:5] for k in ("image", "text")}
    reconstruct = reconstruction.make_reconstruct_fn(
        trainer.model, trainer.cfg, trainer.vocab_size, pixel_reconstructor(trainer.cfg)
    )
    pictures = []
    for devices in (1, 8):
        mesh = sharding.make_mesh(trainer.cfg.mesh, jax.devices()[:devices])
        params = jax.device_put(trainer.state.params, sharding.replicated(mesh))
        with sharding.activate(mesh):
            hidden, images = reconstruct(params, data, jax.random.PRNGKey(0))
        assert images.shape == data["image"].shape
        pictures.append((np.asarray(hidden), np.asarray(images)))
    np.testing.assert_array_equal(pictures[0][0], pictures[1][0])
    np.testing.assert_allclose(pictures[0][1], pictures[1][1], atol=1e-6)


def test_evaluating_a_checkpoint_twice_is_bitwise_identical(tiny_config, tmp_path):
    """The same evaluation in two fresh processes with different hash seeds (set and
    dict orders, grain's reading threads, compilation) gives the same bits, and the
    numbers the training process computed on its live state."""
    from mvl.evaluate.suite import EvalSuite

    trainer = saved_run(tiny_config("clip", **ODD), tmp_path / "run")
    live = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh)
    expected = live.run(trainer.state)
    first = evaluate_on(8, tmp_path / "run", tmp_path / "first.npz", hash_seed="1")
    second = evaluate_on(8, tmp_path / "run", tmp_path / "second.npz", hash_seed="2")
    assert first["metrics"] == second["metrics"] == expected
    for name in ("images", "texts", "features"):
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.slow(minutes=8)
@pytest.mark.parametrize(
    "method, overrides",
    [
        (  # retrieval, zero-shot, ITM re-ranking, probes, held-out losses
            "maskvlm",
            {
                "evals.retrieval.itm_rerank_k": "3",
                "evals.probe.type": "probe",
                "evals.probe.steps": "20",
                "evals.held_out_losses.type": "held_out_losses",
            },
        ),
        ("mlim", {}),  # pair matching, held-out losses under each modality mode
    ],
)
def test_one_checkpoint_gives_the_same_metrics_on_1_2_4_and_8_devices(
    tiny_config, tmp_path, method, overrides
):
    """A saved checkpoint evaluated in subprocesses with 1, 2, 3, 4 and 8 devices (3 does
    not divide the training batch of 16: evaluation does not care): counts
    (recall, accuracy, average precision) equal, unit embeddings within 1e-6."""
    saved_run(tiny_config(method, **ODD, **overrides), tmp_path / "run")
    results = {n: evaluate_on(n, tmp_path / "run", tmp_path / f"{n}.npz") for n in (1, 2, 3, 4, 8)}
    for devices in (2, 3, 4, 8):
        assert_same_metrics(results[1]["metrics"], results[devices]["metrics"])
        for name, array in results[1].items():
            if name != "metrics":
                assert results[devices][name].shape[0] == 61, name
                # Unit embeddings within 1e-6; pooled features relative to their scale.
                scale = 1.0 if name in ("images", "texts") else float(np.abs(array).max())
                np.testing.assert_allclose(results[devices][name], array, atol=1e-6 * scale)
