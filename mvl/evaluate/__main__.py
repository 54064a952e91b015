"""python -m mvl.evaluate --checkpoint WORKDIR [--eval NAME ...] [--config FILE:ARGS]
                          [--config.k=v ...] [--json OUT] [--tensorboard DIR]

Runs the evaluators the config declares (`evals`, mvl/evaluate/suite.py) on the newest
checkpoint of a run, without touching the run's folder: a run still training can be
evaluated. The config is the one the checkpoint was written with unless --config names
another. `--eval NAME` (repeatable) runs only those: a declared evaluator, or a
registered type the config does not declare, with its defaults (e.g. `--eval probe` on
a CLIP run); overrides set their options, e.g. --config.evals.probe.steps=50, or
declare one under a name of yours: --eval coco --config.evals.coco.type=retrieval_benchmark
--config.evals.coco.karpathy_json=... (mvl/evaluate/evaluators/benchmark_*.py). The
tokenizer is data.tokenizer, or the run's WORKDIR/tokenizer.model. Any device count
works (a run trained on 8 devices can be evaluated on 1 or 3), with the same numbers.
"""

from __future__ import annotations

import json
import types

import ml_collections

from mvl import config as config_lib
from mvl.runtime import cli
from mvl.runtime.errors import UserError


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.evaluate", __doc__)
    parser.add_argument("--checkpoint", required=True, help="a run's workdir (or checkpoints/)")
    parser.add_argument("--config", help="configs/X.py[:arg]; default: the checkpoint's own")
    parser.add_argument(
        "--eval", action="append", default=[], help="run only this evaluator (repeatable)"
    )
    parser.add_argument("--json", help="also write the metrics to this file")
    parser.add_argument(
        "--tensorboard", help="also write the metrics as TensorBoard scalars in this folder"
    )
    return config_lib.parse_command_line(parser, argv)


def config_for(args, overrides) -> ml_collections.ConfigDict:
    """The config to evaluate with, unlocked, with the overrides of everything but
    `evals` applied (those apply once the evaluators are declared: `declare_evals`)."""
    from mvl.runtime import checkpoint

    if args.config:
        cfg = config_lib.load_config(args.config)
    else:
        cfg = ml_collections.ConfigDict(checkpoint.load_saved_config(args.checkpoint))
    cfg.unlock()
    config_lib.apply_overrides(cfg, evals_overrides(overrides, False))
    return cfg


def evals_overrides(overrides: dict, evals: bool = True) -> dict:
    """The `evals.*` overrides (evals=False: all the others)."""
    return {k: v for k, v in overrides.items() if k.startswith("evals.") == evals}


def declare_evals(cfg, model, names=(), overrides=None) -> list[str] | None:
    """Declares what this command runs: an old config's flags as evaluators, each
    --eval NAME the config lacks (a registered type), then the `evals.*` overrides;
    returns the names to run (None: every declared one)."""
    from mvl.evaluate import legacy_evals, registry

    legacy_evals.declared(cfg, model)
    for name in names:
        # Not declared by the config nor by --config.evals.NAME.type=...: a registered type.
        if name not in cfg.evals and f"evals.{name}.type" not in (overrides or {}):
            config_lib.add_eval(cfg, name)  # a registered type (else one line naming them)
    config_lib.apply_overrides(cfg, overrides or {})
    registry.validate_sections(cfg.evals)
    cfg.lock()
    return list(names) or None


def suite_for(cfg, checkpoint_dir: str, names=(), overrides=None):
    """(EvalSuite, its state: params and teacher, step) for the newest checkpoint;
    `names`, `overrides`: the --eval names and `evals.*` overrides (declare_evals)."""
    from mvl import validate
    from mvl.evaluate.suite import EvalSuite
    from mvl.models.model import build_model, build_teacher
    from mvl.runtime import checkpoint, sharding
    from mvl.train.run_tokenizer import load_tokenizer
    from mvl.train.workdir import run_dir_of

    # Not validate(cfg, devices): the training batch_size need not divide this machine's
    # devices to evaluate (evaluation pads its batches); only the mesh must fit them.
    validate.validate(cfg)
    try:
        mesh = sharding.make_mesh(cfg.mesh)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    tokenizer = load_tokenizer(cfg, run_dir_of(checkpoint_dir), train_if_missing=False)
    step, state = checkpoint.load_state(checkpoint_dir, sharding.replicated(mesh))
    model = build_model(cfg, tokenizer.vocab_size, tokenizer.special_ids)
    only = declare_evals(cfg, model, names, overrides)
    suite = EvalSuite(model, cfg, tokenizer, mesh, build_teacher(cfg), only)
    saved = params_matching(model, cfg, state["params"], checkpoint_dir)
    params = types.SimpleNamespace(
        params=saved, teacher=state.get("teacher"), teacher_head=state.get("teacher_head")
    )
    return suite, params, step


def evaluate(cfg, checkpoint_dir: str, names=(), overrides=None) -> dict[str, float]:
    suite, params, step = suite_for(cfg, checkpoint_dir, names, overrides)
    return {"step": step, **suite.run(params)}


def params_matching(model, cfg, saved: dict, checkpoint_dir: str) -> dict:
    """The checkpoint's parameters for this config's model (entries the model does not
    use are left out); a missing or reshaped one is a UserError naming it, instead of
    flax's ScopeParamNotFoundError in the middle of an evaluator."""
    import flax.linen as nn
    import jax

    from mvl.runtime import checkpoint
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
    cfg = config_for(args, overrides)
    metrics = evaluate(cfg, args.checkpoint, args.eval, evals_overrides(overrides))
    for name, value in sorted(metrics.items()):
        print(f"{name:45s} {value:.4g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=1, sort_keys=True)
    if args.tensorboard:
        write_scalars(args.tensorboard, metrics)
    return 0


def write_scalars(folder: str, metrics: dict):
    """The metrics as TensorBoard scalars eval/<name> at the checkpoint's step (clu)."""
    from clu import metric_writers

    writer = metric_writers.create_default_writer(folder, asynchronous=False)
    scalars = {f"eval/{k}": v for k, v in metrics.items() if k != "step"}
    writer.write_scalars(int(metrics["step"]), scalars)
    writer.close()


if __name__ == "__main__":
    cli.exit_with(main())
