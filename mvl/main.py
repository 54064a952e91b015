"""python -m mvl.main --config configs/maskvlm.py:demo --workdir DIR [--config.key=value ...]

Trains the config's method (resuming from DIR's newest checkpoint), evaluates it every
`eval.every_steps` and at the end, and writes DIR/eval_final.json.

Multi-process (run the same command in every process): `--distributed` on Cloud TPU
pods, SLURM or Open MPI; otherwise `--coordinator HOST:PORT --num_processes N
--process_id I`.
"""

from __future__ import annotations

import sys

from mvl import config as config_lib, distributed
from mvl.errors import UserError


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.main", __doc__)
    parser.add_argument("--config", required=True, help="configs/X.py[:arg], e.g. :demo")
    parser.add_argument("--workdir", required=True, help="checkpoints, logs and results")
    distributed.add_arguments(parser)
    overrides, args = config_lib.parse_command_line(parser, argv)
    cfg = config_lib.load_config(args.config)
    config_lib.apply_overrides(cfg, overrides)
    return cfg, args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, args = parse_args(argv)
        from mvl.train import loop  # heavy imports only once the command line is valid

        distributed.initialize_from(args)
        loop.train_and_evaluate(cfg, args.workdir)
    except UserError as e:
        print(f"mvl: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
