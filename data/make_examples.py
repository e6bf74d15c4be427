"""Writes the example data files that recipes in recipes/ read, without any download.

    python data/make_examples.py            # data/wine.csv and data/shapes/ (class folders)
    python data/make_examples.py --images   # only the image folder

- `data/wine.csv` (committed): scikit-learn's wine recognition table (178 wines, 13
  measurements; Forina et al., UCI), with three tasks' labels: `cultivar` (3 classes),
  `alcohol` (a measurement to predict) and `rich_in_proline` (0/1). It ships with
  scikit-learn, so it needs no network.
- `data/shapes/<shape>/<n>.png` (generated, not committed): 240 images of 32×32 pixels from the
  built-in `shapes` generator, one folder per class, for `source: image_dir` recipes.

`data/cache/` is where on-disk data caches go by default (ignored by git).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_wine(path: Path) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame = frame.rename(columns={"target": "cultivar", "od280/od315_of_diluted_wines": "od280_od315"})
    frame["cultivar"] = frame["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["rich_in_proline"] = (frame["proline"] > frame["proline"].median()).astype(int)
    frame.round(4).to_csv(path, index=False)


def write_shapes(folder: Path, n: int = 240, size: int = 32, seed: int = 0) -> None:
    from PIL import Image

    from mtl_runner.data.builtin.shapes import load_shapes

    frame = load_shapes(n=n, size=size, seed=seed)
    for index, row in frame.iterrows():
        target = folder / row["shape"] / f"{index:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row["image"]).save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", action="store_true", help="only write data/shapes/")
    args = parser.parse_args()
    if not args.images:
        write_wine(HERE / "wine.csv")
        print(f"wrote {HERE / 'wine.csv'}")
    write_shapes(HERE / "shapes")
    print(f"wrote {HERE / 'shapes'}")


if __name__ == "__main__":
    main()
