"""What a `shapes` image shows and how its caption says it, before any pixel is drawn.

An image holds 1-3 objects (the first LARGE, the others SMALL distractors) in distinct
cells of a 3x3 grid; the caption names every object's size, colour, shape and position.
Drawing is mvl/data/shapes_render.py; the dataset is mvl/data/shapes.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "cyan")
# Row-major 3x3 grid: cell = 3 * row + col.
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "centre",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
# How each cell is said after an object ("a small red star on the left").
POSITION_PHRASES = (
    "in the top left",
    "at the top",
    "in the top right",
    "on the left",
    "in the centre",
    "on the right",
    "in the bottom left",
    "at the bottom",
    "in the bottom right",
)

ONE_OBJECT_TEMPLATES = (
    "{}",
    "an image of {}",
    "a picture showing {}",
    "there is {}",
    "a photo with {}",
    "{} on a noisy background",
    "a noisy scene with {}",
    "this image contains {}",
)
MANY_OBJECTS_TEMPLATES = (
    "{}",
    "an image of {}",
    "there is {}",
    "a picture with {}",
    "a scene showing {}",
    "{count} shapes, {}",
    "{count} objects on a noisy background, {}",
)
COUNT_WORDS = {2: "two", 3: "three"}


@dataclasses.dataclass(frozen=True)
class SceneObject:
    shape: int
    colour: int
    cell: int
    large: bool

    @property
    def row(self) -> int:
        return self.cell // 3

    @property
    def col(self) -> int:
        return self.cell % 3


def sample_objects(rng: np.random.Generator) -> list[SceneObject]:
    """1-3 objects in distinct cells, all with distinct (shape, colour); objects[0] is large."""
    num_objects = int(rng.integers(1, 4))
    cells = rng.permutation(9)[:num_objects]
    pairs = rng.permutation(len(SHAPES) * len(COLOURS))[:num_objects]
    # Distinct pairs make every distractor differ from the main object in shape
    # or colour, so the caption never names two identical things.
    return [
        SceneObject(
            shape=int(pair) // len(COLOURS),
            colour=int(pair) % len(COLOURS),
            cell=int(cell),
            large=(i == 0),
        )
        for i, (pair, cell) in enumerate(zip(pairs, cells))
    ]


def describe(obj: SceneObject, omit: str | None = None) -> str:
    """ "a large red circle"; omit="colour" gives "a large circle", omit="shape"
    "a large red shape"."""
    size = "large" if obj.large else "small"
    colour = "" if omit == "colour" else f"{COLOURS[obj.colour]} "
    shape = "shape" if omit == "shape" else SHAPES[obj.shape]
    return f"a {size} {colour}{shape}"


def relation(obj: SceneObject, anchor: SceneObject) -> str | None:
    """Where `obj` is relative to `anchor`; only for edge-adjacent cells, so the
    relation still pins down the exact cell (the text must predict the image)."""
    offset = (obj.row - anchor.row, obj.col - anchor.col)
    return {
        (1, 0): "below it",
        (-1, 0): "above it",
        (0, 1): "to the right of it",
        (0, -1): "to the left of it",
    }.get(offset)


def join_phrases(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def make_caption(
    objects: list[SceneObject],
    rng: np.random.Generator,
    omit_rng: np.random.Generator | None = None,
    omit_prob: float = 0.0,
) -> str:
    """Objects in random order, each with an absolute position or, sometimes,
    its position relative to the object named just before it.

    With `omit_prob`, each object independently loses its colour word, or else its
    shape word, and (separately) its position, each with that probability, drawn
    from `omit_rng` so that images and full captions do not depend on it. Real
    captions are incomplete, and this keeps every attribute necessary: when colour
    and position already single out a caption in a batch, a contrastive model has
    no reason to learn shape, and a caption without colour forces it to.
    """
    order = rng.permutation(len(objects))
    phrases = []
    for k, i in enumerate(order):
        obj = objects[i]
        rel = relation(obj, objects[order[k - 1]]) if k > 0 else None
        where = rel if rel is not None and rng.random() < 0.5 else POSITION_PHRASES[obj.cell]
        omit, omit_where = None, False
        if omit_rng is not None and omit_prob > 0:
            u = omit_rng.random(3)
            omit = "colour" if u[0] < omit_prob else "shape" if u[1] < omit_prob else None
            omit_where = u[2] < omit_prob
        phrases.append(describe(obj, omit) + ("" if omit_where else f" {where}"))
    body = join_phrases(phrases)
    if len(objects) == 1:
        return ONE_OBJECT_TEMPLATES[rng.integers(len(ONE_OBJECT_TEMPLATES))].format(body)
    template = MANY_OBJECTS_TEMPLATES[rng.integers(len(MANY_OBJECTS_TEMPLATES))]
    return template.format(body, count=COUNT_WORDS[len(objects)])
