"""Every comparison table runs one recipe: its rows' resolved configs differ only in
the keys the table declares it varies (`Table.varies`), at demo and at paper scale."""

import glob
import os

import pytest

from mvl import config as config_lib
from mvl.runtime import run_identity
from mvl.tables.runner import load_table, plan

TABLES = sorted(glob.glob("configs/tables/*.py"))
ROOT = "/table-root"  # the runs' workdirs live under it; never created


def resolved(run) -> dict:
    """The run's config as mvl.main would build it; another run's workdir (a teacher,
    the pretraining checkpoint and tokenizer of a fine-tuning stage) reads as one
    placeholder, since each row necessarily points at its own."""
    cfg = config_lib.load_config(run.config)
    config_lib.apply_overrides(cfg, run.overrides)
    return {
        key: "<a run's workdir>" if isinstance(value, str) and value.startswith(ROOT) else value
        for key, value in run_identity.flatten(cfg.to_dict()).items()
    }


def declared(key: str, varies) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in varies)


def undeclared_differences(table, scale: str) -> dict:
    """{(stage, key): {row: value}} for keys that differ between rows but are not in
    `table.varies` (a key a row lacks reads as missing)."""
    by_stage = {}
    for run in plan(table, scale, 1, ROOT):
        by_stage.setdefault(run.stage, {})[run.row] = resolved(run)
    found = {}
    for stage, rows in by_stage.items():
        keys = set().union(*rows.values())
        for key in sorted(keys):
            values = {row: config.get(key, "<missing>") for row, config in rows.items()}
            if len({repr(v) for v in values.values()}) > 1 and not declared(key, table.varies):
                found[(stage, key)] = values
    return found


@pytest.mark.parametrize("scale", ["demo", "paper"])
@pytest.mark.parametrize("path", TABLES, ids=[os.path.basename(p) for p in TABLES])
def test_rows_share_one_recipe(path, scale):
    table = load_table(path)
    differences = undeclared_differences(table, scale)
    assert not differences, (
        f"{path} at {scale}: rows differ in keys outside its varies={table.varies}: "
        + "; ".join(f"{stage}:{key} {values}" for (stage, key), values in differences.items())
    )


def test_the_check_catches_a_recipe_change():
    import dataclasses

    table = load_table("configs/tables/maskclip_components.py")
    rows = list(table.rows)
    rows[1] = dataclasses.replace(rows[1], overrides={**rows[1].overrides, "optim.lr": 1e-2})
    differences = undeclared_differences(dataclasses.replace(table, rows=tuple(rows)), "demo")
    assert list(differences) == [("pretrain", "optim.lr")]
