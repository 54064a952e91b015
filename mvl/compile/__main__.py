"""python -m mvl.compile: mvl's real train step compiled ahead of time for a TPU pod or
GPU hosts this machine does not have, with its memory, FLOPs, roofline and collectives.

  python -m mvl.compile --config configs/maskclip.py:paper --topology v5e:16x16 [--num_slices 2]
  python -m mvl.compile --config configs/clip.py:paper --gpu h100:1x1x8   # slices x hosts x GPUs
  python -m mvl.compile --config configs/clip.py:paper --topology v5p:4x4x4 --search
  python -m mvl.compile --table configs/*.py:paper --topologies v5e:16x16,v5p:4x4x4,h100:1x1x8 \\
      --out docs/paper_scale.md

Needs the AOT compilers: pip install -r requirements-aot.txt (no accelerator needed).
Exit status: 0, 2 for a bad config or topology (one line), 3 when the step does not fit
in the chip's memory (with a hint). `--config.key=value` overrides apply to every config.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
import tempfile

from mvl.compile import topology

topology.quiet_platform_environment()  # before jax is imported

from mvl import config as config_lib
from mvl.runtime import cli
from mvl.runtime.errors import UserError

HINT = (
    "shard more (--config.mesh.fsdp), recompute (--config.model.remat), split the batch "
    "(--config.optim.microbatches), or try --search"
)


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.compile", __doc__)
    parser.add_argument("--config", help="configs/X.py[:arg]")
    parser.add_argument("--topology", help="a TPU slice: v5e:16x16, v4:2x2x4, v5p-128, ...")
    parser.add_argument("--gpu", help="GPU hosts: h100:1x1x8 (slices x hosts x GPUs)")
    parser.add_argument("--num_slices", type=int, default=1, help="TPU multi-slice")
    parser.add_argument("--json", help="write the findings here")
    parser.add_argument("--search", action="store_true", help="rank mesh layouts and remat")
    parser.add_argument("--search_limit", type=int, default=6, help="compiles --search may run")
    parser.add_argument("--table", nargs="+", help="config specs (globs allowed) for --out")
    parser.add_argument("--topologies", default="v5e:16x16,v5p:4x4x4,h100:1x1x8")
    parser.add_argument("--out", default="docs/paper_scale.md", help="--table's markdown")
    parser.add_argument(
        "--update", action="store_true", help="--table: keep --out's other cells, redo these"
    )
    overrides, args = config_lib.parse_command_line(parser, argv)
    if not args.table and not args.config:
        parser.error("give --config (one config) or --table (several)")
    if args.config and not args.table and bool(args.topology) == bool(args.gpu):
        parser.error("give exactly one of --topology (TPU) or --gpu")
    return overrides, args


@contextlib.contextmanager
def quiet_stderr():
    """libtpu and the CUDA plugin write start-up notes for real hardware straight to file
    descriptor 2; keep them from the user unless something fails."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def target_devices(name: str, num_slices: int = 1):
    target = topology.parse(name, num_slices)
    with quiet_stderr():
        devices = topology.devices(target)
    return target, devices


def one(args, overrides) -> int:
    from mvl.compile import report, run

    target, devices = target_devices(args.topology or args.gpu, args.num_slices)
    cfg = run.load(args.config, overrides, target)
    if not args.search:
        result = run.compile_and_report(cfg, args.config, target, devices)
        print(report.text(result), flush=True)
        results = [result]
    else:
        results = search_results(cfg, args.config, target, devices, args.search_limit)
        result = results[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                result if not args.search else {"best": result, "ranked": results}, f, indent=1
            )
    if not result["fits"]:
        from mvl.compile.aot import DoesNotFit

        raise DoesNotFit(report.not_fitting_hint(result))
    return 0


def search_results(cfg, name, target, devices, limit: int) -> list[dict]:
    from mvl.compile import decode_rate, report, run, search

    rate = decode_rate.images_per_second(cfg.data.image_size)
    results, tried, own_fits = [], [], None
    while len(tried) < limit:
        pending = [
            c
            for c in search.candidates(cfg, len(devices), target.num_slices, own_fits)
            if c not in tried
        ]
        if not pending:
            break
        settings = pending[0]
        tried.append(settings)
        try:
            result = run.compile_and_report(
                run.with_settings(cfg, settings), name, target, devices, rate
            )
        except UserError as e:  # DoesNotFit included: the compiler ran out of HBM
            print(f"  {settings}: {e}", flush=True)
            own_fits = False if own_fits is None else own_fits
            continue
        own_fits = result["fits"] if own_fits is None else own_fits
        results.append(result)
        print(
            f"  {settings}: {report.gib(result['per_chip_bytes']['total'])}, "
            f"{'fits' if result['fits'] else 'does not fit'}, roofline "
            f"{result['roofline_step_s'] * 1e3:.1f} ms, compile {result['compile_s']:.0f} s",
            flush=True,
        )
    if not results:
        raise UserError(f"--search: no layout of {name} compiled for {target.name}")
    ranked = search.rank(results)
    print("ranked (fitting first, fastest roofline first):")
    for place, r in enumerate(ranked, 1):
        m = r["mesh"]
        print(
            f"  {place}. data {m['data']} fsdp {m['fsdp']} tensor {m['tensor']} "
            f"remat {r['remat']}: "
            f"{r['roofline_step_s'] * 1e3:.1f} ms, {report.gib(r['per_chip_bytes']['total'])}"
            f"{'' if r['fits'] else ' (does not fit)'}"
        )
    print(report.text(ranked[0]), flush=True)
    return ranked


def table(args, overrides, argv) -> int:
    """Every config x topology; with --update, the cells of an earlier table that this
    command does not recompile are kept (each command is listed in the table)."""
    from mvl.compile import run
    from mvl.compile import table as table_lib

    specs = []
    for pattern in args.table:
        path, sep, arg = pattern.partition(":")
        paths = sorted(glob.glob(path)) or [path]
        specs += [p + sep + arg for p in paths]
    saved = table_lib.Saved.read(args.out) if args.update else table_lib.Saved()
    saved.commands.append(table_lib.stamped("python -m mvl.compile " + " ".join(argv)))
    for name in args.topologies.split(","):  # a topology's rows together: GPU ones compile fast
        for spec in specs:
            print(f"== {spec} on {name}", flush=True)
            try:
                target, devices = target_devices(name)
                cfg = run.load(spec, overrides, target)
                saved.put(search_results(cfg, spec, target, devices, args.search_limit)[0])
            except Exception as e:  # a broken cell is reported; the other rows still run
                message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                print(f"  failed: {message}", flush=True)
                saved.put({"config": spec, "topology": name, "failed": message})
            saved.write(args.out)
    saved.write(args.out)
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    return cli.run_main("mvl.compile", _compile, argv)


def _compile(argv) -> int:
    """DoesNotFit (exit 3, with the hint) and UserError (exit 2) become one line in
    cli.run_main."""
    with quiet_stderr():  # the CUDA plugin reports the missing driver on import and start
        import jax

        jax.devices()
    from mvl.compile.aot import DoesNotFit

    overrides, args = parse_args(argv)
    try:
        return table(args, overrides, argv) if args.table else one(args, overrides)
    except DoesNotFit as e:
        if "--config.mesh.fsdp" in str(e):  # the report's own hint, with today's values
            raise
        raise DoesNotFit(f"{e}; {HINT}") from None  # the compiler refused: general hint


if __name__ == "__main__":
    cli.exit_with(main())
