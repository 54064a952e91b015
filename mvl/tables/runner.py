"""Runs a table's rows: one run per row, seed and stage, each in its own workdir.

  WORKDIR/<row>/seed<k>/<stage>/   a normal mvl workdir (checkpoints, eval_final.json)
                                    plus table_stage.json: the config and overrides

A stage whose workdir has eval_final.json and the same table_stage.json is finished
and is not run again, so an interrupted table resumes where it stopped (an interrupted
stage resumes from its own checkpoints, as any mvl run does). A workdir written with
other settings is an error rather than a silently reused result. (A finished run whose
workdir is gone can still be kept from the table's results JSON: see results.py.)
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import shlex
import time
from typing import Any

from mvl import config as config_lib
from mvl.runtime import json_file
from mvl.runtime.errors import UserError
from mvl.tables.spec import Row, Table

STAGE_RECORD = "table_stage.json"
_ROW_WORKDIR = re.compile(r"\{workdir:([^}]+)\}")


class TableError(UserError, ValueError):
    """A table config or table workdir a user must fix; the message names it."""


def load_table(path: str) -> Table:
    if not os.path.isfile(path):
        raise TableError(f"table config not found: {path!r}")
    from mvl.config.loading import python_file

    module = python_file(path, "mvl_table_config")
    if not hasattr(module, "get_table"):
        raise TableError(f"{path} defines no get_table()")
    return module.get_table()


@dataclasses.dataclass(frozen=True)
class StageRun:
    row: str
    seed: int
    stage: str
    config: str  # configs/X.py:arg
    overrides: dict[str, str]
    workdir: str
    root: str  # the table's --workdir, which holds every run of it

    @property
    def key(self) -> str:
        """The run's name in a results JSON: ROW/seedK/STAGE."""
        return f"{self.row}/seed{self.seed}/{self.stage}"

    def command(self) -> str:
        """The same run as a command line (e.g. to launch a paper-scale row on a pod)."""
        args = ["python", "-m", "mvl.main", "--config", self.config, "--workdir", self.workdir]
        args += [f"--config.{key}={value}" for key, value in self.overrides.items()]
        return shlex.join(args)

    def record(self) -> dict:
        return {"config": self.config, "overrides": self.overrides}

    def portable_record(self) -> dict:
        """record() with the table's workdir written `{workdir}`: the same settings on
        any machine, whatever --workdir the table runs in there."""
        overrides = {
            k: "{workdir}" + v[len(self.root) :] if _inside(v, self.root) else v
            for k, v in self.overrides.items()
        }
        return {"config": self.config, "overrides": overrides}

    def inputs(self, runs: list[StageRun]) -> list[StageRun]:
        """The runs whose workdirs this one reads (its pretraining checkpoint and
        tokenizer, another row's run as a teacher)."""
        values = self.overrides.values()
        return [r for r in runs if r is not self and any(_inside(v, r.workdir) for v in values)]

    def finished(self) -> bool:
        """True when done with these settings; raises when done with other ones."""
        path = os.path.join(self.workdir, STAGE_RECORD)
        if not os.path.exists(path):
            return False
        with open(path) as f:
            saved = json.load(f)
        if {k: saved[k] for k in ("config", "overrides")} != self.record():
            raise TableError(
                f"{self.workdir} was run with other settings ({path}: {saved}); "
                f"delete it or choose another --workdir for these ({self.record()})"
            )
        return os.path.exists(os.path.join(self.workdir, "eval_final.json"))


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + os.sep)


def row_workdir(workdir: str, row: str, seed: int, stage: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "_", row).strip("_")
    return os.path.join(workdir, slug, f"seed{seed}", stage)


def plan(
    table: Table,
    scale: str,
    seeds: int,
    workdir: str,
    extra: dict[str, str] | None = None,
    config_args: str = "",
) -> list[StageRun]:
    """Every stage run of the table, in the order they must run (seeds outermost, so a
    first seed of every row finishes before the second starts). `config_args` are
    appended to every run's config argument (e.g. "coco=/data/coco": the benchmarks)."""
    runs = []
    for seed in range(seeds):
        for index, row in enumerate(table.rows):
            pretrain = row_workdir(workdir, row.name, seed, "pretrain")
            values = {
                **(table.demo if scale == "demo" else table.paper),
                **row.overrides,
                "seed": seed,
            }
            values = _resolve_row_workdirs(values, table, index, workdir, seed)
            spec = with_args((row.config or table.config).format(scale=scale), config_args)
            runs.append(_run(row, seed, "pretrain", spec, values, extra, pretrain, workdir))
            for stage in table.stages:
                values = {
                    **(stage.demo if scale == "demo" else {}),
                    **stage.overrides,
                    **row.stage_overrides.get(stage.name, {}),
                    "seed": seed,
                    "init.checkpoint": pretrain,
                    "data.tokenizer": os.path.join(pretrain, "tokenizer.model"),
                }
                spec = row.stage_configs.get(stage.name, stage.config).format(scale=scale)
                spec = with_args(spec, config_args)
                stage_dir = row_workdir(workdir, row.name, seed, stage.name)
                runs.append(_run(row, seed, stage.name, spec, values, extra, stage_dir, workdir))
    return runs


def with_args(spec: str, config_args: str) -> str:
    """configs/x.py:paper + "coco=DIR" -> configs/x.py:paper,coco=DIR."""
    if not config_args:
        return spec
    return f"{spec},{config_args}" if ":" in spec else f"{spec}:{config_args}"


def _run(row: Row, seed, stage, spec, values, extra, workdir, root) -> StageRun:
    overrides = {key: _as_text(value) for key, value in {**values, **(extra or {})}.items()}
    return StageRun(row.name, seed, stage, spec, overrides, workdir, root)


def _resolve_row_workdirs(values: dict, table: Table, index: int, workdir: str, seed: int):
    earlier = [row.name for row in table.rows[:index]]

    def resolve(match):
        name = match.group(1)
        if name not in earlier:
            raise TableError(
                f"table {table.name}, row {table.rows[index].name}: {{workdir:{name}}} "
                f"must name an earlier row (earlier rows: {earlier})"
            )
        return row_workdir(workdir, name, seed, "pretrain")

    return {
        key: _ROW_WORKDIR.sub(resolve, value) if isinstance(value, str) else value
        for key, value in values.items()
    }


def _as_text(value: Any) -> str:
    """A config value as its command-line text (tuples as Python literals)."""
    return repr(value) if isinstance(value, (tuple, list)) else str(value)


def run_stage(run: StageRun) -> float:
    """Trains and evaluates one stage in this process; returns its wall time (s)."""
    import jax

    from mvl.train import loop

    cfg = config_lib.load_config(run.config)
    config_lib.apply_overrides(cfg, run.overrides)
    os.makedirs(run.workdir, exist_ok=True)
    record_path = os.path.join(run.workdir, STAGE_RECORD)
    record = run.record()
    if os.path.exists(record_path):  # resuming: keep the time already spent
        with open(record_path) as f:
            record["seconds"] = json.load(f).get("seconds", 0.0)
    json_file.write(record_path, record)
    start = time.time()
    loop.train_and_evaluate(cfg, run.workdir)
    record["seconds"] = record.get("seconds", 0.0) + time.time() - start
    json_file.write(record_path, record)
    jax.clear_caches()  # each row compiles its own step: don't let the cache pile up
    gc.collect()
    return record["seconds"]
