"""The embedded `shapes` dataset: procedurally generated image-caption pairs.

Every example is a pure function of (seed, split, index), so the dataset has
random access, any size, no files and no network. An image holds one LARGE
main object (its `shape`/`colour` are the labels) and 0-2 SMALL distractors in
other cells of a 3x3 grid, over a noisy, cluttered background. The caption
names every object's size, colour, shape and position, so text and image
predict each other. The layout and caption are drawn before any pixel, so
`caption(index)` is cheap (the tokenizer trains on it without rendering).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mvl.data.shapes_render import render
from mvl.data.shapes_scene import COLOURS, SHAPES, SceneObject, make_caption, sample_objects

SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

# The rng stream for caption omissions, apart from the one that lays out and draws.
OMIT_STREAM = 7

ZEROSHOT_PROMPTS = {
    "shape": (
        "a large {}",
        "an image with a large {} in it",
        "there is a large {}",
        "a picture of a big {}",
    ),
    "colour": (
        "a large {} object",
        "an image with a large {} shape in it",
        "there is a large {} shape",
        "a picture of a big {} thing",
    ),
}


def class_names(task: str) -> tuple[str, ...]:
    """Label names for a zero-shot task: "shape" or "colour"."""
    names = {"shape": SHAPES, "colour": COLOURS}
    if task not in names:
        raise ValueError(f"unknown shapes task {task!r}; known: {sorted(names)}")
    return names[task]


def zeroshot_prompts(task: str) -> tuple[str, ...]:
    """Prompt templates with one "{}" for a class name of `task`."""
    class_names(task)  # validates the task name
    return ZEROSHOT_PROMPTS[task]


class ShapesSource:
    """Random-access grain data source of shapes examples.

    Example i of a split comes from default_rng([seed, SPLIT_CODE[split], i]),
    so splits never share examples and nothing depends on other indices; the
    caption does not depend on image_size either.
    """

    labels = ("shape", "colour")  # integer labels of the main object (zero-shot, probes)

    # What evaluators ask a held-out source for (mvl/evaluate/labels.py).
    def class_names(self, task: str) -> tuple[str, ...]:
        return class_names(task)

    def prompts(self, task: str) -> tuple[str, ...]:
        return zeroshot_prompts(task)

    def __init__(
        self,
        split: str = "train",
        size: int = 100_000,
        seed: int = 0,
        image_size: int = 64,
        omit_prob: float = 0.0,
    ):
        if split not in SPLIT_CODE:
            raise ValueError(f"unknown shapes split {split!r}; known: {list(SPLIT_CODE)}")
        if size < 0:
            raise ValueError(f"shapes size must be >= 0, got {size}")
        if image_size < 16:
            raise ValueError(f"shapes image_size must be >= 16, got {image_size}")
        if not 0.0 <= omit_prob < 1.0:
            raise ValueError(f"shapes omit_prob must be in [0, 1), got {omit_prob}")
        self.split, self.size, self.seed, self.image_size = split, size, seed, image_size
        self.omit_prob = omit_prob  # see make_caption

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (
            f"ShapesSource(split={self.split!r}, size={self.size}, seed={self.seed}, "
            f"image_size={self.image_size}, omit_prob={self.omit_prob})"
        )

    def _layout(self, index: int) -> tuple[list[SceneObject], str, np.random.Generator]:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"shapes {self.split} index {index} out of range for size {self.size}")
        rng = np.random.default_rng([self.seed, SPLIT_CODE[self.split], index])
        objects = sample_objects(rng)
        omit_rng = np.random.default_rng([self.seed, SPLIT_CODE[self.split], index, OMIT_STREAM])
        return objects, make_caption(objects, rng, omit_rng, self.omit_prob), rng

    def caption(self, index: int) -> str:
        """The caption of example `index`, without rendering its image."""
        return self._layout(index)[1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        objects, caption, rng = self._layout(index)
        main = objects[0]
        return {
            "image": render(objects, self.image_size, rng),
            "caption": caption,
            "shape": main.shape,
            "colour": main.colour,
            "num_objects": len(objects),
        }
