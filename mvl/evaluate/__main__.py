"""python -m mvl.evaluate --checkpoint WORKDIR [--config FILE:ARGS] [--config.k=v ...] [--json OUT]

Runs the evaluation suite (mvl/evaluate/suite.py) on the newest checkpoint of a run,
without touching the run's folder: a run still training can be evaluated. The config is
the one the checkpoint was written with unless --config names another; overrides
switch evaluations on or off, e.g. --config.eval.probe.enabled=true. The tokenizer is
data.tokenizer, or the run's WORKDIR/tokenizer.model. Any device count works (a run
trained on 8 devices can be evaluated on 1 or 3), with the same numbers.
"""

from __future__ import annotations

import json
import os
import types

import ml_collections

from mvl import cli, config as config_lib
from mvl.errors import UserError


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.evaluate", __doc__)
    parser.add_argument("--checkpoint", required=True, help="a run's workdir (or checkpoints/)")
    parser.add_argument("--config", help="configs/X.py[:arg]; default: the checkpoint's own")
    parser.add_argument("--json", help="also write the metrics to this file")
    return config_lib.parse_command_line(parser, argv)


def config_for(args, overrides) -> ml_collections.ConfigDict:
    from mvl import checkpoint

    if args.config:
        cfg = config_lib.load_config(args.config)
    else:
        cfg = ml_collections.ConfigDict(checkpoint.load_saved_config(args.checkpoint))
        cfg.lock()
    config_lib.apply_overrides(cfg, overrides)
    return cfg


def tokenizer_for(cfg, run_dir: str):
    from mvl.data import clip_bpe
    from mvl.data.tokenizer import Tokenizer

    if cfg.data.tokenizer and clip_bpe.is_clip_bpe(cfg.data.tokenizer):
        return clip_bpe.ClipBpeTokenizer(cfg.data.tokenizer)

    path = cfg.data.tokenizer or os.path.join(run_dir, "tokenizer.model")
    if not os.path.exists(path):
        raise UserError(f"config data.tokenizer: {path} does not exist")
    return Tokenizer(path)


def suite_for(cfg, checkpoint_dir: str):
    """(EvalSuite, its state: params and teacher, step) for the newest checkpoint."""
    from mvl import checkpoint, sharding, validate
    from mvl.evaluate.suite import EvalSuite
    from mvl.models.model import build_model, build_teacher

    # Not validate(cfg, devices): the training batch_size need not divide this machine's
    # devices to evaluate (evaluation pads its batches); only the mesh must fit them.
    validate.validate(cfg)
    try:
        mesh = sharding.make_mesh(cfg.mesh)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    run_dir = checkpoint_dir.rstrip("/")
    if os.path.basename(run_dir) == "checkpoints":
        run_dir = os.path.dirname(run_dir)
    tokenizer = tokenizer_for(cfg, run_dir)
    step, state = checkpoint.load_state(checkpoint_dir, sharding.replicated(mesh))
    model = build_model(cfg, tokenizer.vocab_size, tokenizer.special_ids)
    suite = EvalSuite(model, cfg, tokenizer, mesh, teacher_model=build_teacher(cfg))
    saved = params_matching(model, cfg, state["params"], checkpoint_dir)
    params = types.SimpleNamespace(params=saved, teacher=state.get("teacher"))
    return suite, params, step


def evaluate(cfg, checkpoint_dir: str) -> dict[str, float]:
    suite, params, step = suite_for(cfg, checkpoint_dir)
    return {"step": step, **suite.run(params)}


def params_matching(model, cfg, saved: dict, checkpoint_dir: str) -> dict:
    """The checkpoint's parameters for this config's model (entries the model does not
    use are left out); a missing or reshaped one is a UserError naming it, instead of
    flax's ScopeParamNotFoundError in the middle of an evaluator."""
    import flax.linen as nn
    import jax

    from mvl import checkpoint
    from mvl.train.state import init_params

    expected = jax.eval_shape(
        lambda rng: nn.unbox(init_params(model, cfg, rng)), jax.random.PRNGKey(0)
    )
    where = f"--checkpoint {checkpoint_dir}"
    try:
        params, _ = checkpoint.merge_params(expected, saved, True, where)
    except UserError as e:
        raise UserError(
            f"{e}. Evaluate it with the config it was trained with (leave out --config)"
        ) from None
    return params


def main(argv=None) -> int:
    return cli.run_main("mvl.evaluate", _evaluate, argv)


def _evaluate(argv) -> int:
    overrides, args = parse_args(argv)
    metrics = evaluate(config_for(args, overrides), args.checkpoint)
    for name, value in sorted(metrics.items()):
        print(f"{name:45s} {value:.4g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    cli.exit_with(main())
