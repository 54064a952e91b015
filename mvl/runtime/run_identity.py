"""A workdir belongs to one run: WORKDIR/config.json keeps the config the run was
started with, and rerunning with another config is refused before anything is built,
naming every changed key (old -> new). A silent resume under another method or
learning rate would train on and overwrite the run's results as if nothing changed.

Keys that only say how long, how often or how many (RESUMABLE_KEYS) may change on a
resume: a longer total_steps, a denser log. Anything else needs
`--allow_config_change`, which accepts the new config as the run's own from then on and
appends what changed, and when, to WORKDIR/config_changes.jsonl. Safe changes are
recorded there too.
"""

from __future__ import annotations

import json
import os
import time

import jax

from mvl.runtime import json_file
from mvl.runtime.errors import UserError

CONFIG_FILE = "config.json"
CHANGES_FILE = "config_changes.jsonl"

# The keys a resumed run may change freely: the schedule's length, the cadence of
# logs, checkpoints and evaluations, how many checkpoints are kept, how evaluation is
# batched and what a failed evaluation does. None of them changes what a step computes
# up to the step the run is at. (total_steps does stretch the learning-rate schedule
# from there on: that is what a longer run means.)
# Likewise which evaluations run and how (every key under eval. and evals.): none of
# them touches training.
RESUMABLE_KEYS = (
    "total_steps",
    "log_every_steps",
    "checkpoint.every_steps",
    "checkpoint.max_to_keep",
    # How the same computation is laid out on the hardware (a run moved to other
    # hardware picks another config.fit entry): recomputation and the mesh change
    # memory and speed, not the numbers.
    "model.remat",
    "model.attention",  # the kernel: same numbers to float rounding
    # diagnostics: extra measurements and warnings, not what the step computes
    "objective_grad_norm_every",
    "objectives.distill.collapse_perplexity",
    "mesh.data",
    "mesh.fsdp",
    "mesh.tensor",
)
RESUMABLE_PREFIXES = ("eval.", "evals.", "fit.")

SHOWN_CHANGES = 8  # a method swap changes dozens of keys: the message names the first


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """{"optim.lr": 0.001, ...} with JSON values (tuples as lists), for comparison."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def as_json(cfg) -> dict:
    """The config as JSON would read it back (tuples become lists, and so on)."""
    return json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))


def resumable(key: str) -> bool:
    return key in RESUMABLE_KEYS or key.startswith(RESUMABLE_PREFIXES)


def as_saved_today(old: dict, new: dict) -> dict:
    """A config saved by an older mvl as this one saves it: mesh.rules (added later,
    DEFAULT_RULES before) filled in, and the model-part and teacher sections every config
    used to carry dropped where the new config has no such part or teacher (they were
    never built)."""
    from mvl.config.mesh_section import DEFAULT_RULES
    from mvl.config.model_sections import PART_NAMES

    old = json.loads(json.dumps(old))
    mesh = old.get("mesh", {})
    if "rules" not in mesh and "mesh" in old:
        mesh["rules"] = json.loads(json.dumps(DEFAULT_RULES))
    model, new_model = old.get("model", {}), new.get("model", {})
    for part in PART_NAMES:
        if part in model and part not in new_model:
            del model[part]
    teacher = old.get("teacher", {})
    if teacher.get("kind") == "none" and set(new.get("teacher", {})) == {"kind"}:
        old["teacher"] = {"kind": "none"}  # the unused teacher keys every config had
    return old


# Keys added to mvl after runs were started, by their last name, with the value that
# computes what those runs computed: absent in a saved config and at this value in
# the new one, they are no change.
ADDED_KEYS = {
    "positions": "learned",
    "keep_cls": False,
    "attention": "xla",
    "objective_grad_norm_every": 0,
    "reduction": "sum_per_image",  # objectives.recon: the per-image sum it computed before
    # objectives.distill: the student's codebook, no centring (the momentum of a centre
    # that is off changes nothing)
    "teacher_head": "shared",
    "center": False,
    "center_momentum": 0.9,
    "collapse_perplexity": 2.0,
    "size": 0,  # data.local_crops: views at the image's own size
    "loss_chunk": 0,  # objectives.caption: all positions' logits at once
}


def _added_as_before(key: str, value) -> bool:
    """A key an older mvl did not save, at a value that changes nothing it computed: an
    empty one (e.g. `imports`: ()) or its ADDED_KEYS value."""
    leaf = key.rsplit(".", 1)[-1]
    return value in ([], "") or (leaf in ADDED_KEYS and value == ADDED_KEYS[leaf])


def changes(old: dict, new: dict) -> dict[str, tuple]:
    """{key: (old, new)} for every key whose value differs (absent on one side: None);
    keys added to mvl since the run started, at their as-before values, are not changes."""
    old_flat, new_flat = flatten(as_saved_today(old, new)), flatten(new)
    added = {k for k in set(new_flat) - set(old_flat) if _added_as_before(k, new_flat[k])}
    keys = sorted((set(old_flat) | set(new_flat)) - added)
    return {
        k: (old_flat.get(k), new_flat.get(k)) for k in keys if old_flat.get(k) != new_flat.get(k)
    }


def describe(changed: dict[str, tuple]) -> str:
    shown = [f"{k} {old!r} -> {new!r}" for k, (old, new) in list(changed.items())[:SHOWN_CHANGES]]
    more = len(changed) - SHOWN_CHANGES
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


class RunIdentity:
    """`check()` before anything is built; `keep()` once training starts, so a first
    attempt that failed during start-up (a bad path, a typo) pins nothing."""

    def __init__(self, cfg, workdir: str, allow_change: bool = False):
        self.workdir, self.allow_change = workdir, allow_change
        self.path = os.path.join(workdir, CONFIG_FILE)
        self.config = as_json(cfg)
        self.changed: dict[str, tuple] = {}
        self.unsafe: dict[str, tuple] = {}

    def check(self):
        """Raises UserError when the workdir's run was started with another config and
        a changed key is not resumable (unless --allow_config_change)."""
        if not os.path.exists(self.path):
            return
        try:
            with open(self.path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(
                f"{self.path} is unreadable ({e}); it records the config this workdir's "
                "run was started with: restore it, or use a fresh --workdir"
            ) from None
        self.changed = changes(old, self.config)
        self.unsafe = {k: v for k, v in self.changed.items() if not resumable(k)}
        if self.unsafe and not self.allow_change:
            raise UserError(
                f"workdir {self.workdir} holds a run started with another config "
                f"({self.path}); changed: {describe(self.unsafe)}. Rerun with that run's "
                "config, use a fresh --workdir, or add --allow_config_change to go on "
                "under the new config"
            )

    def keep(self):
        """Writes the config as the run's own, and what changed since the last start."""
        if self.changed:
            _record(self.workdir, self.changed, self.unsafe)
        if self.unsafe:
            print(
                f"config changed on resume (--allow_config_change, recorded in "
                f"{os.path.join(self.workdir, CHANGES_FILE)}): {describe(self.unsafe)}",
                flush=True,
            )
        if self.changed or not os.path.exists(self.path):
            json_file.write(self.path, self.config)


def _record(workdir: str, changed: dict[str, tuple], unsafe: dict[str, tuple]):
    if jax.process_index() != 0:
        return
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "allowed_by_flag": bool(unsafe),
        "changed": {k: {"old": old, "new": new} for k, (old, new) in changed.items()},
    }
    with open(os.path.join(workdir, CHANGES_FILE), "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
