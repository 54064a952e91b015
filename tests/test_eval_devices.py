"""Evaluation on any device count: an eval set and batch size that divide nothing run on
8 devices (each batch padded to the mesh's batch shards, the padding dropped), and give
the metrics of 1 device."""

import types

import jax
import numpy as np
import pytest

from mvl import sharding

# 61 held-out pairs in batches of 25: neither divides 2, 4 or 8 (61 is prime).
ODD = {"data.eval_size": "61", "eval.batch_size": "25"}

# Metrics that count rows (recall, accuracy, average precision over pairs) must be
# equal; losses are means whose reduction order follows the sharding.
LOSS_TOLERANCE = 1e-5


def suite_on(devices: int, trainer, cfg):
    """An EvalSuite and the trainer's state on a mesh of the first `devices` devices."""
    from mvl.evaluate.suite import EvalSuite

    mesh = sharding.make_mesh(cfg.mesh, jax.devices()[:devices])
    here = sharding.replicated(mesh)
    state = types.SimpleNamespace(
        params=jax.device_put(trainer.state.params, here),
        teacher=None if trainer.state.teacher is None else jax.device_put(trainer.state.teacher, here),
    )
    suite = EvalSuite(trainer.model, cfg, trainer.tokenizer, mesh, teacher_model=trainer.teacher_model)
    return suite, state


def assert_same_metrics(one: dict, many: dict):
    assert one.keys() == many.keys()
    for name, value in one.items():
        if name.startswith("held_out/"):
            assert many[name] == pytest.approx(value, rel=LOSS_TOLERANCE), name
        else:
            assert many[name] == value, name


@pytest.mark.parametrize(
    "method, overrides",
    [
        ("clip", {"eval.probe.enabled": "true"}),  # retrieval, zero-shot, probe, kNN
        ("mae", {}),  # held-out losses (a last chunk of 11 rows) and the probes
        ("mlim", {}),  # pair matching and held-out losses under each modality mode
        ("maskvlm", {"eval.itm_rerank_k": "3"}),  # ITM re-ranking of retrieval
    ],
)
def test_61_pairs_on_8_devices_give_the_metrics_of_1_device(tiny_config, tmp_path, method, overrides):
    from mvl.train.loop import Trainer

    cfg = tiny_config(method, **ODD, **overrides, **{"eval.probe.steps": "20"})
    trainer = Trainer(cfg, str(tmp_path))
    trainer.step(trainer.next_batch())  # past init: embeddings that tell rows apart
    one, state_one = suite_on(1, trainer, trainer.cfg)
    eight, state_eight = suite_on(8, trainer, trainer.cfg)
    assert len(eight.data["image"]) == 61
    metrics_one, metrics_eight = one.run(state_one), eight.run(state_eight)
    assert_same_metrics(metrics_one, metrics_eight)
    if "retrieval/chance/r@1" in metrics_eight:  # every real pair counted, no padding
        assert metrics_eight["retrieval/chance/r@1"] == 1 / 61
    if "image" in trainer.model.components:  # MLIM has one stream, no image tower
        images = eight.data["image"]
        features_one = one.embedder.image_features(state_one.params, images)
        features_eight = eight.embedder.image_features(state_eight.params, images)
        assert features_eight.shape[0] == 61
        np.testing.assert_allclose(features_eight, features_one, atol=1e-6, rtol=1e-6)


def test_reconstructions_of_5_images_on_8_devices(tiny_config, tmp_path):
    """The loop's reconstruction grid: 5 rows on 8 devices, the same pictures as on 1."""
    from mvl.evaluate import reconstruction
    from mvl.train.loop import Trainer

    trainer = Trainer(tiny_config("maskvlm", **ODD), str(tmp_path))
    data = load_rows(trainer, 5)
    pictures = []
    for devices in (1, 8):
        mesh = sharding.make_mesh(trainer.cfg.mesh, jax.devices()[:devices])
        params = jax.device_put(trainer.state.params, sharding.replicated(mesh))
        reconstruct = reconstruction.make_reconstruct_fn(trainer.model, trainer.cfg, trainer.vocab_size)
        with sharding.activate(mesh):
            hidden, images = reconstruct(params, data, jax.random.PRNGKey(0))
        assert images.shape == data["image"].shape
        pictures.append((np.asarray(hidden), np.asarray(images)))
    np.testing.assert_array_equal(pictures[0][0], pictures[1][0])
    np.testing.assert_allclose(pictures[0][1], pictures[1][1], atol=1e-6)


def load_rows(trainer, count: int) -> dict:
    from mvl.evaluate.suite import load_eval_set

    data = load_eval_set(trainer.cfg, trainer.tokenizer)
    return {k: data[k][:count] for k in ("image", "text")}


def environment(devices: int) -> dict:
    """This session's XLA flags with `devices` simulated CPU devices instead of 8."""
    import os

    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": root,
    }


def evaluate_on(devices: int, run_dir, out) -> dict:
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "tests", "evaluate_on_devices.py")
    done = subprocess.run(
        [sys.executable, script, str(run_dir), str(out)],
        cwd=root,
        env=environment(devices),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as saved:
        assert int(saved["devices"]) == devices
        arrays = {k: saved[k] for k in saved.files if k not in ("devices", "metrics")}
        return {"metrics": json.loads(str(saved["metrics"])), **arrays}


@pytest.mark.slow(minutes=8)
@pytest.mark.parametrize(
    "method, overrides",
    [
        (  # retrieval, zero-shot, ITM re-ranking, probes, held-out losses
            "maskvlm",
            {
                "eval.itm_rerank_k": "3",
                "eval.probe.enabled": "true",
                "eval.probe.steps": "20",
                "eval.held_out_losses": "true",
            },
        ),
        ("mlim", {}),  # pair matching, held-out losses under each modality mode
    ],
)
def test_one_checkpoint_gives_the_same_metrics_on_1_2_4_and_8_devices(
    tiny_config, tmp_path, method, overrides
):
    """python-level evaluation of a saved checkpoint in subprocesses with 1, 2, 4 and 8
    devices: counts (recall, accuracy, average precision) equal, embeddings within 1e-6."""
    from mvl.train.loop import Trainer

    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config(method, **ODD, **overrides), str(run_dir))
    for _ in range(2):
        trainer.step(trainer.next_batch())
    assert trainer.save()
    trainer.checkpointer.wait()
    results = {n: evaluate_on(n, run_dir, tmp_path / f"{n}.npz") for n in (1, 2, 4, 8)}
    for devices in (2, 4, 8):
        assert_same_metrics(results[1]["metrics"], results[devices]["metrics"])
        for name, array in results[1].items():
            if name != "metrics":
                assert results[devices][name].shape[0] == 61, name
                np.testing.assert_allclose(results[devices][name], array, atol=1e-6, rtol=0)
