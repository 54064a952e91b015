"""Recipe helpers a method config calls: schedules in epochs, lr per batch, towers."""

from __future__ import annotations

# Recipes in epochs ---------------------------------------------------------------------
# A paper states its schedule in passes over its dataset and its peak lr per 256 images;
# these link the steps and the lr to batch_size (ml_collections FieldReferences), so
# `--config.batch_size=...` or `--config.epochs=...` on the command line recompute them.
# Setting total_steps, optim.warmup_steps or optim.lr explicitly replaces the link.


def schedule_in_epochs(c, *, epochs: float, num_examples: int, warmup_epochs: float | None = None):
    """total_steps = epochs * data.num_examples // batch_size (and warmup_steps from
    warmup_epochs likewise, when given)."""
    c.epochs = float(epochs)
    c.data.num_examples = int(num_examples)
    c.total_steps = _steps_of(c, c.get_ref("epochs"))
    if warmup_epochs is not None:
        c.optim.warmup_epochs = float(warmup_epochs)
        c.optim.warmup_steps = _steps_of(c, c.optim.get_ref("warmup_epochs"))


def _steps_of(c, epochs_ref):
    return (epochs_ref * c.data.get_ref("num_examples") / c.get_ref("batch_size")).to_int()


def scale_lr_with_batch(c, *, base_lr: float, reference_batch: int = 256):
    """optim.lr = optim.base_lr * batch_size / optim.lr_reference_batch (the linear
    scaling rule MAE and FLIP state their lr with)."""
    c.optim.base_lr = float(base_lr)
    c.optim.lr_reference_batch = int(reference_batch)
    c.optim.lr = (
        c.optim.get_ref("base_lr") * c.get_ref("batch_size") / c.optim.get_ref("lr_reference_batch")
    )


def set_image_tower(c, **values):
    """Sets model.image keys and the same teacher.image keys (an EMA teacher is a copy of
    the student's tower; a frozen one is replaced by its checkpoint's at run start)."""
    c.model.image.update(values)
    if "image" in c.teacher:  # a config with a teacher (add_teacher)
        c.teacher.image.update({k: v for k, v in values.items() if k in c.teacher.image})
