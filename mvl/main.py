"""python -m mvl.main --config configs/maskvlm.py:demo --workdir DIR [--config.key=value ...]

Trains the config's method (resuming from DIR's newest checkpoint), evaluates it every
`eval.every_steps` and at the end, and writes DIR/eval_final.json.
"""

from __future__ import annotations

import argparse
import sys

from mvl import config as config_lib
from mvl.errors import UserError


def parse_args(argv):
    overrides, rest = config_lib.parse_cli_overrides(argv)
    parser = argparse.ArgumentParser(
        prog="python -m mvl.main",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="configs/X.py[:arg], e.g. :demo")
    parser.add_argument("--workdir", required=True, help="checkpoints, logs and results")
    args = parser.parse_args(rest)
    cfg = config_lib.load_config(args.config)
    config_lib.apply_overrides(cfg, overrides)
    return cfg, args.workdir


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, workdir = parse_args(argv)
        from mvl.train import loop  # heavy imports only once the command line is valid

        loop.train_and_evaluate(cfg, workdir)
    except UserError as e:
        print(f"mvl: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
