"""Procedurally generated shapes: small RGB images with several labels, fixed by a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.data.builtin.base import DATASETS

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 220)}


def draw(shape: str, colour: tuple[int, int, int], radius: float, cx: float, cy: float,
         size: int, rng: np.random.Generator) -> np.ndarray:
    """One image: a filled shape on a noisy grey background."""
    yy, xx = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    if shape == "circle":
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
    elif shape == "square":
        inside = (np.abs(xx - cx) <= radius * 0.85) & (np.abs(yy - cy) <= radius * 0.85)
    else:  # an upward triangle with its centroid at (cx, cy)
        top, bottom = cy - radius, cy + radius * 0.8
        half_width = (yy - top) / (bottom - top) * radius
        inside = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half_width)
    background = rng.normal(120, 12, size=(size, size, 1)).repeat(3, axis=2)
    image = np.where(inside[..., None], np.array(colour, dtype="float32"), background)
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@DATASETS.register("shapes")
def load_shapes(n: int = 2000, size: int = 32, seed: int = 0) -> pd.DataFrame:
    """A multi-task image dataset that needs no download.

    Each image holds one shape. Labels: `shape` (circle, square, triangle), `colour` (red,
    green, blue), `big` (1 when the shape is large), `x` and `y` (its centre, 0–1).

    Args:
        n: number of images.
        size: side of the square images, in pixels.
        seed: the generator's seed; the same seed gives the same images.
    """
    rng = np.random.default_rng(seed)
    rows = []
    images = []
    for _ in range(int(n)):
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        big = int(rng.integers(2))
        radius = size * (rng.uniform(0.26, 0.34) if big else rng.uniform(0.12, 0.18))
        cx, cy = (rng.uniform(radius + 1, size - radius - 1) for _ in range(2))
        images.append(draw(shape, COLOURS[colour], radius, cx, cy, size, rng))
        rows.append((shape, colour, big, cx / size, cy / size))
    frame = pd.DataFrame(rows, columns=["shape", "colour", "big", "x", "y"])
    frame.insert(0, "image", images)
    return frame
