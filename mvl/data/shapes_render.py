"""Drawing a `shapes` scene (mvl/data/shapes_scene.py) as pixels.

Each shape is a signed distance field (negative inside, roughly pixels outside), which
gives anti-aliased coverage as clip(0.5 - d, 0, 1). Images are float32 channel-first
[3, S, S] while drawing: numpy broadcasts a colour over contiguous rows ~10x faster than
over a trailing axis of size 3.
"""

from __future__ import annotations

import numpy as np

from mvl.data.shapes_scene import SHAPES, SceneObject

# The pixel value of each of shapes_scene.COLOURS, in the same order.
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

LARGE_RADIUS = 0.16  # fraction of the image size
SMALL_RADIUS = 0.08
SIZE_JITTER = 0.05  # relative; keeps the two sizes far apart
CENTRE_JITTER = 0.04  # fraction of the image size; small, so the cell stays unambiguous
# Half-extent of any shape in units of its radius (the star is widest);
# used to keep objects inside the image.
MAX_EXTENT = 1.2
NOISE_STD = 6.0  # gaussian pixel noise, in 0..255 units


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
