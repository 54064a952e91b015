"""The label tasks a held-out source offers, for the evaluators that need labels.

A source names its integer label fields in `labels` (each sample then has them) and
offers `class_names(task)` and, for zero-shot classification, `prompts(task)` (templates
with one "{}"). The generated `shapes` data has two tasks (the main object's shape and
colour); real image-text data has none, so label evaluators report nothing for it
unless a config names tasks, which is then an error naming what the source lacks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mvl.config.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LabelTask:
    name: str
    class_names: tuple[str, ...]
    prompts: tuple[str, ...]  # empty when the source offers none
    labels: np.ndarray  # int [rows]: each held-out row's class


def label_tasks(source, data: dict) -> dict[str, LabelTask]:
    """{task: LabelTask} of every task the source names, has class names for and whose
    labels came with the held-out rows."""
    tasks = {}
    for task in getattr(source, "labels", ()):
        names = getattr(source, "class_names", None)
        if names is None or task not in data:
            continue
        prompts = getattr(source, "prompts", None)
        tasks[task] = LabelTask(
            task, tuple(names(task)), tuple(prompts(task)) if prompts else (), data[task]
        )
    return tasks


def chosen_tasks(
    where: str, wanted, offered: dict[str, LabelTask], source, need_prompts: bool = False
) -> list[LabelTask]:
    """The tasks an evaluator's `tasks` option names (() = every task offered); a named
    task the source lacks is a ConfigError naming the source."""
    usable = {k: t for k, t in offered.items() if t.prompts or not need_prompts}
    if not wanted:
        return list(usable.values())
    missing = [task for task in wanted if task not in usable]
    if missing:
        what = "class names and prompts" if need_prompts else "class names"
        raise ConfigError(
            f"config {where}.tasks: the held-out source {source!r} offers no {what} for "
            f"{missing[0]!r} (it offers: {', '.join(usable) or 'none'})"
        )
    return [usable[task] for task in wanted]
