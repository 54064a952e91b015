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
    from mvl.evaluate import model_parts

    overrides, args = evaluate_cli.parse_args(["--checkpoint", run_dir, *overrides])
    cfg = evaluate_cli.config_for(args, overrides)
    evals = evaluate_cli.evals_overrides(overrides)
    suite, state, _ = evaluate_cli.suite_for(cfg, run_dir, args.eval, evals)
    metrics = suite.run(state)
    data, model, embedder = suite.data, suite.context.model, suite.context.embedder
    arrays = {}
    if model_parts.embeds(model):
        arrays["images"] = embedder.images(state.params, data["image"])
        arrays["texts"] = embedder.texts(state.params, data["text"])
    if model_parts.has_image_tower(model):
        arrays["features"] = embedder.image_features(state.params, data["image"])
    if model_parts.single_stream(model):
        arrays["items"] = embedder.items(state.params, data["image"], data["text"], "both")
    np.savez(out, devices=len(jax.devices()), metrics=json.dumps(metrics), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
