"""python -m mvl.main --config configs/maskvlm.py:demo --workdir DIR [--config.key=value ...]

Trains the config's method (resuming from DIR's newest checkpoint), runs the evaluators
the config declares (`evals`) every `eval.every_steps` (or their own every_steps) and at
the end, and writes DIR/eval_final.json.

DIR belongs to one run: DIR/config.json keeps the config it was started with, and a
rerun with another config is refused (exit 2) naming each changed key, except keys
safe to change on resume (mvl/runtime/run_identity.py RESUMABLE_KEYS: total_steps, the log /
checkpoint cadences, ..., and every eval. / evals. key). --allow_config_change goes on under the new config
and records the change in DIR/config_changes.jsonl.

Exit status: 0 done (or stopped by SIGTERM after saving), 1 the run failed (a
checkpoint that cannot be written, a failed evaluation: the message says what is
saved), 2 a user error, 130 Ctrl-C (after saving, once training has started).

Multi-process (run the same command in every process): `--distributed` on Cloud TPU
pods, SLURM or Open MPI; otherwise `--coordinator HOST:PORT --num_processes N
--process_id I`.
"""

from __future__ import annotations

import time

from mvl import config as config_lib
from mvl.runtime import cli, distributed


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.main", __doc__)
    parser.add_argument("--config", required=True, help="configs/X.py[:arg], e.g. :demo")
    parser.add_argument("--workdir", required=True, help="checkpoints, logs and results")
    parser.add_argument(
        "--allow_config_change",
        action="store_true",
        help="resume WORKDIR under a config that differs from the one it was started "
        "with (the change is recorded in WORKDIR/config_changes.jsonl)",
    )
    distributed.add_arguments(parser)
    overrides, args = config_lib.parse_command_line(parser, argv)
    cfg = config_lib.load_config(args.config)
    config_lib.apply_overrides(cfg, overrides)
    return cfg, args, overrides


def main(argv=None) -> int:
    return cli.run_main("mvl", _train, argv)


def _train(argv) -> int:
    started = time.time()
    cfg, args, overrides = parse_args(argv)
    # The first line comes before the heavy imports (jax, flax, orbax: seconds).
    print(
        f"mvl: {args.config} -> {args.workdir}: {cfg.total_steps} steps of batch "
        f"{cfg.batch_size}; starting up",
        flush=True,
    )
    from mvl.train import loop  # heavy imports only once the command line is valid

    distributed.initialize_from(args)
    fit_to_hardware(cfg, overrides)
    loop.train_and_evaluate(
        cfg,
        args.workdir,
        allow_config_change=args.allow_config_change,
        command_started=started,
    )
    return 0


def fit_to_hardware(cfg, overrides):
    """Applies the config's fit entry for the devices this run has (mvl/runtime/fit.py)."""
    import jax

    from mvl.runtime import fit

    hardware = fit.hardware_of(jax.devices(), jax.process_count())
    if hardware is None or not len(cfg.fit):
        return
    chosen = fit.apply(cfg, hardware, keep=overrides)
    if chosen:
        text = ", ".join(f"{k}={v}" for k, v in chosen.items())
        print(f"[fit] {hardware}: {text} (the config's fit.{hardware})", flush=True)
    else:
        known = ", ".join(cfg.fit.keys())
        print(f"[fit] {hardware}: no fit entry (the config has {known}); own settings", flush=True)


if __name__ == "__main__":
    cli.exit_with(main())
