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

import dataclasses
from typing import Any

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "cyan")
RGB = np.array(
    [
        (220, 40, 40),  # red
        (40, 190, 60),  # green
        (50, 90, 235),  # blue
        (235, 220, 50),  # yellow
        (150, 60, 200),  # purple
        (245, 140, 30),  # orange
        (245, 245, 245),  # white
        (40, 215, 225),  # cyan
    ],
    dtype=np.float32,
)
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
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

LARGE_RADIUS = 0.16  # fraction of the image size
SMALL_RADIUS = 0.08
SIZE_JITTER = 0.05  # relative; keeps the two sizes far apart
CENTRE_JITTER = 0.04  # fraction of the image size; small, so the cell stays unambiguous
# Half-extent of any shape in units of its radius (the star is widest);
# used to keep objects inside the image.
MAX_EXTENT = 1.2
NOISE_STD = 6.0  # gaussian pixel noise, in 0..255 units

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


# ---------------------------------------------------------------------------
# Layout and caption (no pixels).


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


# ---------------------------------------------------------------------------
# Rendering. Each shape is a signed distance field (negative inside, roughly
# pixels outside), which gives anti-aliased coverage as clip(0.5 - d, 0, 1).
# Images are float32 channel-first [3, S, S] while drawing: numpy broadcasts a
# colour over contiguous rows ~10x faster than over a trailing axis of size 3.


def _star_edge_normal() -> tuple[float, float]:
    """Unit normal of the edge from the tip (1, 0) of a unit 5-point star to the
    next inner vertex (at radius 0.5, angle pi/5)."""
    inner_x, inner_y = 0.5 * np.cos(np.pi / 5), 0.5 * np.sin(np.pi / 5)
    normal = np.array([inner_y, 1.0 - inner_x])
    return tuple(float(v) for v in normal / np.linalg.norm(normal))


STAR_EDGE_NORMAL = _star_edge_normal()
SQRT3_2 = float(np.sqrt(3) / 2)


def _star_outline_radius(angle: np.ndarray, radius: float) -> np.ndarray:
    """Distance from the centre to a 5-point star's outline along `angle` (a tip at 0)."""
    sector = 2 * np.pi / 5
    # Fold every angle onto [0, sector/2]: 0 at a tip, sector/2 at an inner vertex.
    folded = sector / 2 - np.abs(angle % sector - sector / 2)
    n_tip, n_side = STAR_EDGE_NORMAL
    # Polar form of the edge line {p : normal . p = normal . tip}, tip = (radius, 0).
    return (radius * n_tip) / (n_tip * np.cos(folded) + n_side * np.sin(folded))


def signed_distance(shape: int, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    """Approximate signed distance in pixels to the outline of SHAPES[shape]; dy grows down.

    Sizes are tuned so all shapes cover a similar area (2.1-2.7 r^2; a large
    object always covers > 2x a small one) and fit in MAX_EXTENT * r.
    """
    name = SHAPES[shape]
    if name == "circle":
        return np.hypot(dy, dx) - 0.92 * r
    if name == "square":
        return np.maximum(np.abs(dy), np.abs(dx)) - 0.8 * r
    if name == "diamond":
        return (np.abs(dy) + np.abs(dx) - 1.15 * r) * float(np.sqrt(0.5))
    if name == "triangle":  # equilateral, pointing up, centred vertically
        R = 1.35 * r  # circumradius; half-width 0.87 R
        y = dy - 0.25 * R  # vertical extent [-0.75 R, 0.75 R]
        slanted = SQRT3_2 * np.abs(dx) - 0.5 * y
        return np.maximum(y, slanted) - 0.5 * R
    if name == "cross":
        ady, adx = np.abs(dy), np.abs(dx)
        arm = 0.32 * r
        return np.minimum(np.maximum(adx - r, ady - arm), np.maximum(adx - arm, ady - r))
    if name == "star":  # angle from "up", so a tip points up
        R = MAX_EXTENT * r
        return np.hypot(dy, dx) - _star_outline_radius(np.arctan2(dx, -dy), R)
    raise AssertionError(f"no renderer for shape {name!r}")


def place(obj: SceneObject, size: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(centre y, centre x, radius) in pixels: cell centre + jitter, kept inside the image."""
    u_size, u_y, u_x = (2 * rng.random(3) - 1).tolist()  # uniform in [-1, 1)
    base = LARGE_RADIUS if obj.large else SMALL_RADIUS
    r = base * size * (1 + SIZE_JITTER * u_size)
    lo, hi = MAX_EXTENT * r + 0.5, size - MAX_EXTENT * r - 0.5
    cy = (obj.row + 0.5) * size / 3 + CENTRE_JITTER * size * u_y
    cx = (obj.col + 0.5) * size / 3 + CENTRE_JITTER * size * u_x
    return min(max(cy, lo), hi), min(max(cx, lo), hi), r


def paint(image: np.ndarray, obj: SceneObject, cy: float, cx: float, r: float) -> None:
    """Alpha-blend one object into `image` (float32 [3, S, S]) in place."""
    size = image.shape[1]
    reach = MAX_EXTENT * r + 1
    y0, y1 = max(0, int(cy - reach)), min(size, int(np.ceil(cy + reach)))
    x0, x1 = max(0, int(cx - reach)), min(size, int(np.ceil(cx + reach)))
    # Only the bounding box is evaluated; pixel centres sit at +0.5.
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    alpha = np.clip(0.5 - signed_distance(obj.shape, dy, dx, r), 0.0, 1.0)
    patch = image[:, y0:y1, x0:x1]
    patch += alpha * (RGB[obj.colour][:, None, None] - patch)


def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A dark random base colour with a few thin dim gray lines and dots as clutter.

    The clutter stays darker (<= 120) than every object colour so it can't be
    mistaken for a white or coloured object.
    """
    base = rng.uniform(5, 70, size=(3, 1, 1)).astype(np.float32)
    gray = np.float32(rng.uniform(70, 120))
    # 1-3 lines, each through a random point at a random angle, fading over ~1 px.
    num_lines = int(rng.integers(1, 4))
    py, px, theta = rng.random((3, num_lines, 1, 1), dtype=np.float32)
    py, px, theta = py * size, px * size, theta * np.float32(np.pi)
    coords = np.arange(size, dtype=np.float32) + 0.5
    dist = np.abs(
        (coords[None, None, :] - px) * np.sin(theta) - (coords[None, :, None] - py) * np.cos(theta)
    )
    alpha = 0.5 * np.clip(1 - dist.min(axis=0), 0, 1)
    image = base + alpha * (gray - base)
    num_dots = int(rng.integers(3, 10))
    ys, xs = rng.integers(0, size, size=(2, num_dots))
    image[:, ys, xs] = gray
    return image


def render(objects: list[SceneObject], size: int, rng: np.random.Generator) -> np.ndarray:
    image = background(size, rng)
    # The main object (objects[0]) goes last so no distractor covers it.
    for obj in objects[1:] + objects[:1]:
        paint(image, obj, *place(obj, size, rng))
    # Luminance-only noise: a third of the cost of per-channel noise.
    image += rng.standard_normal((size, size), dtype=np.float32) * NOISE_STD
    hwc = image.transpose(1, 2, 0)
    return np.clip(hwc + 0.5, 0, 255).astype(np.uint8, order="C")


# ---------------------------------------------------------------------------


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
