"""Joining a multi-process run: one JAX process per host (or per GPU group).

Every process runs the same `python -m mvl.main ...`; `initialize` connects them
before JAX touches a device. Cloud TPU pods, SLURM and Open MPI describe the cluster
in the environment, so `--distributed` alone is enough there; elsewhere pass the
coordinator's address, the process count and this process's id. On CPU (tests, or a
CPU cluster) cross-process collectives go through gloo.
"""

from __future__ import annotations

import argparse

from mvl.runtime.errors import UserError


def initialize(
    auto: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    explicit = (coordinator, num_processes, process_id)
    if any(value is not None for value in explicit):
        if any(value is None for value in explicit):
            raise UserError(
                "--coordinator, --num_processes and --process_id go together "
                f"(got {coordinator!r}, {num_processes!r}, {process_id!r})"
            )
        if not 0 <= process_id < num_processes:
            raise UserError(f"--process_id {process_id} is not in [0, {num_processes})")
    elif not auto:
        return  # a single process
    import jax  # here: the command line is checked before the heavy imports

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line flags of a multi-process run (mvl.main, mvl.tables)."""
    parser.add_argument(
        "--distributed", action="store_true", help="join a TPU pod / SLURM / MPI job"
    )
    parser.add_argument("--coordinator", help="HOST:PORT of process 0, for a manual cluster")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)


def initialize_from(args: argparse.Namespace) -> None:
    initialize(args.distributed, args.coordinator, args.num_processes, args.process_id)
