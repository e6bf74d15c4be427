"""Reading images (files or arrays) into one uint8 array of a fixed size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_dir_table(root: Path, column: str = "image") -> pd.DataFrame:
    """A folder with one subfolder per class as a table of (image path, label).

    The same layout `keras.utils.image_dataset_from_directory` reads: `root/<class>/<file>`.
    """
    rows = [(str(path), folder.name)
            for folder in sorted(p for p in root.iterdir() if p.is_dir())
            for path in sorted(folder.rglob("*"))
            if path.suffix.lower() in IMAGE_SUFFIXES]
    return pd.DataFrame(rows, columns=[column, "label"])


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixel values as uint8 in [0, 255]; floats in [0, 1] are scaled up."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    array = array.astype("float32")
    if array.size and np.nanmax(array) <= 1.0:
        array = array * 255.0
    return np.clip(np.rint(np.nan_to_num(array)), 0, 255).astype(np.uint8)


IMAGE_FILE_LIMIT = 512 * 2**20  # bytes; larger files are refused, not decoded


def read_image(value, shape: tuple[int, int, int]) -> np.ndarray:
    """One image (a file path or an array) resized to `shape` = (height, width, channels)."""
    from PIL import Image

    height, width, channels = shape
    if isinstance(value, (str, Path)):
        from mtl_runner.reading import check_regular_file

        # a FIFO among the images would block the read forever; a huge file is no image
        check_regular_file(value, IMAGE_FILE_LIMIT, "image file")
        with Image.open(value) as opened:
            picture = opened.convert("RGB" if channels == 3 else "L")
            picture.load()
    else:
        array = to_uint8(value)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        picture = Image.fromarray(array)
        picture = picture.convert("RGB" if channels == 3 else "L")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(picture, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def load_images(values: pd.Series, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Reads every image of a column, files on a few threads (PIL decodes outside the GIL).

    Returns:
        (images, failures): a (n, height, width, channels) uint8 array — zeros where an image
        failed — and (row, reason) for each image that could not be read, in row order.
    """
    from concurrent.futures import ThreadPoolExecutor

    images = np.zeros((len(values), *shape), dtype=np.uint8)
    items = values.to_numpy(dtype=object)

    def read(row: int) -> tuple[int, str] | None:
        value = items[row]
        try:
            images[row] = read_image(value, shape)
        except Exception as error:  # noqa: BLE001 - PIL raises many kinds for a bad file
            name = value if isinstance(value, (str, Path)) else f"row {row}"
            return row, f"{name}: {type(error).__name__}: {error}"
        return None

    files = any(isinstance(v, (str, Path)) for v in items[:1])
    workers = min(8, (os.cpu_count() or 1) * 2) if files and len(items) > 64 else 1
    if workers == 1:
        results = [read(row) for row in range(len(items))]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(read, range(len(items))))
    return images, [failure for failure in results if failure is not None]
