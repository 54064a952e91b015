"""Evaluates a run's newest checkpoint on the devices this process has and writes the
metrics and the embeddings behind them (tests/test_eval_devices.py runs it in
subprocesses with different --xla_force_host_platform_device_count):

  python tests/evaluate_on_devices.py RUN_DIR OUT.npz [--config.key=value ...]
"""

import json
import sys


def main(run_dir: str, out: str, overrides: list[str]) -> None:
    import jax
    import numpy as np

    from mvl.evaluate import __main__ as evaluate_cli

    overrides, args = evaluate_cli.parse_args(["--checkpoint", run_dir, *overrides])
    suite, state, _ = evaluate_cli.suite_for(evaluate_cli.config_for(args, overrides), run_dir)
    metrics = suite.run(state)
    data, components = suite.data, suite.model.parts
    arrays = {}
    if "image_projection" in components:
        arrays["images"] = suite.embedder.images(state.params, data["image"])
        arrays["texts"] = suite.embedder.texts(state.params, data["text"])
    if "image" in components:
        arrays["features"] = suite.embedder.image_features(state.params, data["image"])
    if "single_stream" in components:
        arrays["items"] = suite.embedder.items(state.params, data["image"], data["text"], "both")
    np.savez(out, devices=len(jax.devices()), metrics=json.dumps(metrics), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
