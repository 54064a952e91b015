"""Each finished run's numbers for a table's columns (per row, per seed).

They are read from the run's workdir or, when that is gone (another machine, a cleaned
/tmp, a fresh clone), from the table's results JSON: it records every finished run with
its settings, wall time and numbers (`runs`), so committed results are kept and a
rerun, e.g. with more seeds, only runs what no record holds. A record with other
settings than the run's is an error, as a workdir with other settings is.
"""

from __future__ import annotations

import json
import os

import numpy as np

from mvl.tables.runner import STAGE_RECORD, StageRun, TableError
from mvl.tables.spec import Column, Table
from mvl.tables.tensorboard_scalars import read_scalars


def metric_value(workdir: str, metric: str) -> float | None:
    """A number from a finished run: an eval_final.json key, or `tensorboard:<tag>`
    (the median over logged steps after the first, which includes the compile)."""
    if metric.startswith("tensorboard:"):
        steps = read_scalars(workdir).get(metric.split(":", 1)[1], {})
        later = [value for step, value in sorted(steps.items())][1:]
        return float(np.median(later)) if later else None
    path = os.path.join(workdir, "eval_final.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        value = json.load(f).get(metric)
    return None if value is None else float(value)


def stage_seconds(workdir: str) -> float | None:
    path = os.path.join(workdir, STAGE_RECORD)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("seconds")


def load_recorded(path: str, table: Table, scale: str) -> dict:
    """{run key: record} from an earlier results JSON of this table and scale."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    if data.get("table") != table.name or data.get("scale") != scale:
        return {}
    return data.get("runs", {})


def recorded_run(run: StageRun, recorded: dict) -> dict | None:
    """The run's record, if one holds it with the same settings."""
    record = recorded.get(run.key)
    if record is None:
        return None
    saved = {k: record.get(k) for k in ("config", "overrides")}
    if saved != run.portable_record():
        raise TableError(
            f"the results JSON records {run.key} with other settings ({saved}); "
            f"choose another --out or delete that record for these ({run.portable_record()})"
        )
    return record


def kept_from_records(runs: list[StageRun], recorded: dict) -> set[str]:
    """Keys of the runs not finished in their workdirs that their records stand for:
    every recorded run except those whose workdir a run still to be done reads."""
    to_run = [r for r in runs if not r.finished() and recorded_run(r, recorded) is None]
    needed = set()
    while to_run:  # a run to be done needs its inputs' workdirs, so they run too
        for run in to_run.pop().inputs(runs):
            if run.key not in needed and not run.finished():
                needed.add(run.key)
                to_run.append(run)
    return {
        r.key
        for r in runs
        if r.key not in needed and not r.finished() and recorded_run(r, recorded) is not None
    }


def run_record(run: StageRun, table: Table, recorded: dict) -> dict | None:
    """The run's portable record with its numbers: from its workdir if finished there,
    else from `recorded`; None when neither holds it."""
    if not run.finished():
        return recorded_run(run, recorded)
    row = next(r for r in table.rows if r.name == run.row)
    stage_metrics = [row.metric(c) for c in table.columns if c.stage == run.stage]
    metrics = {metric: metric_value(run.workdir, metric) for metric in stage_metrics}
    return {**run.portable_record(), "seconds": stage_seconds(run.workdir), "metrics": metrics}


def collect(table: Table, runs: list[StageRun], seeds: int, recorded: dict) -> dict:
    """{"values": {row: {column label: [per-seed value or None]}},
    "minutes": {row: [per-seed minutes, all stages]}, "runs": {run key: record}}."""
    records = {**recorded}  # records of runs outside this plan (e.g. more seeds) stay
    for run in runs:
        record = run_record(run, table, recorded)
        if record is not None:
            records[run.key] = record
        else:
            records.pop(run.key, None)
    planned = {(run.row, run.seed, run.stage): run.key for run in runs}

    rows = {row.name: row for row in table.rows}

    def raw(row: str, seed: int, column: Column) -> float | None:
        record = records.get(planned.get((row, seed, column.stage)))
        return None if record is None else record["metrics"].get(rows[row].metric(column))

    values = {}
    for row in table.rows:
        values[row.name] = {}
        for column in table.columns:
            shown = []
            for seed in range(seeds):
                value = raw(row.name, seed, column)
                if value is not None and column.relative_to:
                    reference = raw(column.relative_to, seed, column)
                    value = value / reference if reference else None
                shown.append(None if value is None else value * 100 if column.percent else value)
            values[row.name][column.label] = shown
    minutes = {}
    for row in table.rows:
        minutes[row.name] = []
        for seed in range(seeds):
            keys = [key for (r, s, _), key in planned.items() if (r, s) == (row.name, seed)]
            times = [records.get(key, {}).get("seconds") for key in keys]
            done = keys and all(t is not None for t in times)
            minutes[row.name].append(sum(times) / 60 if done else None)
    return {"values": values, "minutes": minutes, "runs": records}
