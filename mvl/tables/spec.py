"""What a table config (`configs/tables/<paper>_<table>.py`) declares.

A table is a base config, one set of overrides per row, the columns to read from each
run and the paper's numbers for them. A row is one run per seed of each stage: the
pretraining stage, then optionally a fine-tuning stage that starts from it.

A row may replace a later stage's config (`Row.stage_configs`: e.g. a fine-tuning stage
with the losses that row pretrained with) and the metric a column reads for it
(`Row.metrics`: e.g. embedding retrieval where that row's stage has no re-ranking head).

Config specs may contain `{scale}` (replaced by "demo" or "paper"). Override values may
name another row's run of the same seed, `{workdir:ROW}` (its pretraining workdir,
e.g. a frozen teacher), so that row must come earlier in the table.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Column:
    label: str  # header, and the key of the paper's number in Row.paper
    metric: str  # a key of the stage's eval_final.json, or "tensorboard:<tag>"
    stage: str = "pretrain"
    percent: bool = True  # our fraction x100, to sit beside the paper's percentages
    # another row's name: this column is the metric divided by that row's (per seed)
    relative_to: str = ""
    higher_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class Stage:
    """A run after pretraining that starts from it (init.checkpoint and the tokenizer
    are set to the pretraining run's)."""

    name: str
    config: str  # e.g. "configs/retrieval_finetune.py:{scale}"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    demo: dict[str, Any] = dataclasses.field(default_factory=dict)  # demo scale only


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    paper: dict[str, float] = dataclasses.field(default_factory=dict)  # column label -> number
    config: str = ""  # replaces the table's config for this row
    # overrides of a later stage, by stage name: {"finetune": {"optim.lr": 1e-5}}
    stage_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # a later stage's config for this row, by stage name (replaces Stage.config)
    stage_configs: dict[str, str] = dataclasses.field(default_factory=dict)
    # the metric a column reads for this row, by column label (replaces Column.metric)
    metrics: dict[str, str] = dataclasses.field(default_factory=dict)

    def metric(self, column: Column) -> str:
        return self.metrics.get(column.label, column.metric)


@dataclasses.dataclass(frozen=True)
class Table:
    name: str  # file-name-like, e.g. "maskvlm_table5"
    title: str
    source: str  # where the paper's numbers come from
    config: str  # e.g. "configs/maskvlm.py:{scale}"
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    # overrides for every row at demo scale (shorter runs: a row takes minutes on a CPU)
    demo: dict[str, Any] = dataclasses.field(default_factory=dict)
    # overrides for every row at paper scale (e.g. one recipe for rows of other configs)
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    notes: str = ""  # what the demo can and cannot show; printed under the table
    # metric renames at paper scale, by prefix: the papers' benchmarks, which the runs
    # declare from `python -m mvl.tables --benchmarks coco=DIR,...`, replace the demo's
    # held-out evaluations, e.g. {"retrieval/": "flickr30k/", "retrieval_itm/":
    # "flickr30k_itm/", "zeroshot/colour/accuracy": "imagenet/top1"}
    paper_metrics: dict[str, str] = dataclasses.field(default_factory=dict)
    # Config keys (dotted prefixes, e.g. "objectives", "model.text_decoder.depth") the
    # rows may set differently: the table's variable. Every other key of the rows'
    # resolved configs must agree, at demo and paper scale (tests/test_table_recipes.py),
    # so a comparison changes one thing, never the recipe with it.
    varies: tuple[str, ...] = ()

    def __post_init__(self):
        names = [row.name for row in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: row names repeat: {names}")
        stage_names = {"pretrain"} | {stage.name for stage in self.stages}
        for column in self.columns:
            if column.stage not in stage_names:
                raise ValueError(
                    f"table {self.name}: column {column.label!r} reads stage "
                    f"{column.stage!r}; the stages are {sorted(stage_names)}"
                )
            if column.relative_to and column.relative_to not in names:
                raise ValueError(
                    f"table {self.name}: column {column.label!r} is relative to "
                    f"unknown row {column.relative_to!r}"
                )
        labels = {c.label for c in self.columns}
        later_stages = stage_names - {"pretrain"}
        for row in self.rows:
            for what, keys, known in (
                ("paper numbers for unknown columns", row.paper, labels),
                ("metrics for unknown columns", row.metrics, labels),
                ("configs for unknown stages", row.stage_configs, later_stages),
                ("overrides for unknown stages", row.stage_overrides, later_stages),
            ):
                unknown = set(keys) - known
                if unknown:
                    raise ValueError(f"table {self.name}, row {row.name}: {what} {sorted(unknown)}")

    def at_scale(self, scale: str) -> Table:
        """The table as run at `scale`: at paper scale every column and row metric is
        renamed by paper_metrics (the longest matching prefix)."""
        if scale != "paper" or not self.paper_metrics:
            return self
        columns = tuple(
            dataclasses.replace(c, metric=self.paper_metric(c.metric)) for c in self.columns
        )
        rows = tuple(
            dataclasses.replace(r, metrics={k: self.paper_metric(v) for k, v in r.metrics.items()})
            for r in self.rows
        )
        return dataclasses.replace(self, columns=columns, rows=rows)

    def paper_metric(self, metric: str) -> str:
        prefixes = [p for p in self.paper_metrics if metric.startswith(p)]
        if not prefixes:
            return metric
        prefix = max(prefixes, key=len)
        return self.paper_metrics[prefix] + metric[len(prefix) :]
