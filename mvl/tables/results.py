"""Reads each finished run's numbers for a table's columns (per row, per seed)."""

from __future__ import annotations

import json
import os

import numpy as np

from mvl.tables.runner import STAGE_RECORD, row_workdir
from mvl.tables.spec import Column, Table
from mvl.tensorboard_scalars import read_scalars


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


def collect(table: Table, seeds: int, workdir: str) -> dict:
    """{"values": {row: {column label: [per-seed value or None]}},
    "minutes": {row: [per-seed minutes, all stages]}}."""
    raw = {
        row.name: {
            column.label: [_raw(table, column, row.name, seed, workdir) for seed in range(seeds)]
            for column in table.columns
        }
        for row in table.rows
    }
    values = {
        row.name: {
            column.label: [_shown(column, raw, row.name, seed) for seed in range(seeds)]
            for column in table.columns
        }
        for row in table.rows
    }
    stages = ["pretrain"] + [stage.name for stage in table.stages]
    minutes = {}
    for row in table.rows:
        minutes[row.name] = []
        for seed in range(seeds):
            times = [stage_seconds(row_workdir(workdir, row.name, seed, s)) for s in stages]
            done = all(t is not None for t in times)
            minutes[row.name].append(sum(times) / 60 if done else None)
    return {"values": values, "minutes": minutes}


def _raw(table, column: Column, row: str, seed: int, workdir: str) -> float | None:
    return metric_value(row_workdir(workdir, row, seed, column.stage), column.metric)


def _shown(column: Column, raw: dict, row: str, seed: int) -> float | None:
    value = raw[row][column.label][seed]
    if value is None:
        return None
    if column.relative_to:
        reference = raw[column.relative_to][column.label][seed]
        if not reference:
            return None
        value = value / reference
    return value * 100 if column.percent else value
