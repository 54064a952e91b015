"""python -m mvl.tables configs/tables/X.py --scale demo|paper --seeds N --out FILE.md

Runs every row of a paper table (each row a short run per seed at demo scale; finished
rows are kept and not rerun), then writes FILE.md: our mean +- std beside the paper's
numbers and whether the paper's ordering of rows holds, and FILE.json with every
seed's numbers (notebooks/tables.ipynb plots it) and a record of every finished run.
A run recorded in FILE.json with the same settings is kept even where its workdir is
gone (a fresh clone keeps the committed results; --seeds 4 after 3 runs one more).

--config.a.b=value applies to every run of the table (e.g. a shorter total_steps).
--benchmarks imagenet=DIR,coco=DIR,flickr30k=DIR names the papers' benchmarks on disk:
appended to every run's config argument (the configs declare those evaluations from
it: mvl/evaluate/benchmarks/paper_evals.py), and at paper scale the columns read them.
--dry-run prints each run's equivalent `python -m mvl.main` command and runs nothing
(at paper scale: launch those on a pod, then rerun this command to collect the table).
On a pod, run the same command in every process with --distributed (as mvl.main).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback

from mvl import config as config_lib
from mvl.runtime import cli, distributed
from mvl.runtime.errors import Interrupted, OneLineError


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.tables", __doc__)
    parser.add_argument("table", help="configs/tables/<paper>_<table>.py")
    parser.add_argument("--scale", choices=("demo", "paper"), default="demo")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per row")
    parser.add_argument("--out", help="markdown file (default: WORKDIR/<table>.md)")
    parser.add_argument(
        "--workdir", help="runs go under here (default: /tmp/mvl_tables/<table>/<scale>)"
    )
    parser.add_argument("--rows", help="only these rows (comma-separated names)")
    parser.add_argument("--dry-run", action="store_true", help="print the runs' commands")
    parser.add_argument(
        "--benchmarks",
        default="",
        help="imagenet=DIR,coco=DIR,flickr30k=DIR: config arguments for every run",
    )
    distributed.add_arguments(parser)  # every process runs the same table, row by row
    return config_lib.parse_command_line(parser, argv)


def main(argv=None) -> int:
    return cli.run_main("mvl.tables", _tables, argv)


def _tables(argv) -> int:
    overrides, args = parse_args(argv)
    return run(args, overrides, argv)


def run(args, overrides: dict[str, str], argv) -> int:
    from mvl.tables import results, runner

    if args.seeds < 1:
        raise runner.TableError(f"--seeds {args.seeds}: must be at least 1")
    table = runner.load_table(args.table).at_scale(args.scale)
    workdir = os.path.abspath(args.workdir or f"/tmp/mvl_tables/{table.name}/{args.scale}")
    out = args.out or os.path.join(workdir, f"{table.name}.md")
    runs = all_runs = runner.plan(
        table, args.scale, args.seeds, workdir, overrides, args.benchmarks
    )
    if args.rows:
        chosen = set(args.rows.split(","))
        unknown = chosen - {row.name for row in table.rows}
        if unknown:
            raise runner.TableError(f"--rows: no rows {sorted(unknown)} in {args.table}")
        runs = [r for r in runs if r.row in chosen]
    if args.dry_run:
        for stage_run in runs:
            print(stage_run.command())
        return 0
    distributed.initialize_from(args)
    command = shlex.join(["python", "-m", "mvl.tables", *argv])
    record_path = os.path.splitext(out)[0] + ".json"
    recorded = results.load_recorded(record_path, table, args.scale)
    kept = results.kept_from_records(all_runs, recorded)

    def write_results():
        write(table, results.collect(table, all_runs, args.seeds, recorded), args, command, out)

    failed = {}  # (row, seed) -> the stage that failed; the row's later stages are skipped
    for number, stage_run in enumerate(runs, 1):
        where = (
            f"[table {number}/{len(runs)}] {stage_run.row} seed {stage_run.seed} {stage_run.stage}"
        )
        if (stage_run.row, stage_run.seed) in failed:
            print(f"{where}: skipped, {failed[stage_run.row, stage_run.seed]} failed", flush=True)
            continue
        if stage_run.finished():
            print(f"{where}: finished earlier, kept", flush=True)
            continue
        if stage_run.key in kept:
            print(f"{where}: recorded in {record_path}, kept", flush=True)
            continue
        print(f"{where}: running in {stage_run.workdir}", flush=True)
        try:
            seconds = runner.run_stage(stage_run)
        except Interrupted:
            raise  # Ctrl-C stops the table, not just this row
        except OneLineError as e:  # a row's own error, told in one line
            print(f"{where}: FAILED: {e}; going on with the other rows", flush=True)
            failed[stage_run.row, stage_run.seed] = stage_run.stage
            continue
        except Exception:  # noqa: BLE001 -- one broken row must not cost the others
            traceback.print_exc()
            print(f"{where}: FAILED (traceback above); going on with the other rows", flush=True)
            failed[stage_run.row, stage_run.seed] = stage_run.stage
            continue
        print(f"{where}: done in {seconds / 60:.1f} min", flush=True)
        write_results()
    write_results()
    print(f"wrote {out} and {record_path}", flush=True)
    if failed:
        failures = f"{len(failed)} row runs failed: {sorted(failed)}"
        print(f"mvl.tables: error: {failures}", file=sys.stderr)
        return 1
    return 0


def write(table, collected: dict, args, command: str, out: str):
    """The markdown, and a JSON beside it with every seed's numbers and the paper's."""
    import jax

    from mvl.tables import report

    if jax.process_index() != 0:
        return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(report.markdown(table, collected, args.scale, args.seeds, command))
    data = {
        "table": table.name,
        "title": table.title,
        "scale": args.scale,
        "seeds": args.seeds,
        "command": command,
        "columns": [c.label for c in table.columns],
        "paper": {row.name: row.paper for row in table.rows},
        "ordering": {
            c.label: report.ordering(table, c, collected["values"]) for c in table.columns
        },
        **collected,
    }
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    cli.exit_with(main())
