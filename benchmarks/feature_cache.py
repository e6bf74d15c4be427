"""A frozen-backbone stage with cached features vs the same stage without, side by side.

ResNet50 (random weights: no download) on built-in `shapes` images at 32×32 (600 by default), two task
heads, 10 epochs with the backbone frozen, early stopping off. The runs alternate (cached,
uncached, cached, ...) so machine noise hits both; we report the median stage time of each,
their ratio, and the test accuracy of each (the cached path should match the uncached one).

    python benchmarks/feature_cache.py --repeats 3 --out benchmarks/feature_cache.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import pandas as pd
import yaml

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "finetune_offline.yaml"


def run(cache: bool, epochs: int, results: Path, n: int) -> dict:
    import keras

    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train

    data = yaml.safe_load(RECIPE.read_text())
    data["training"]["cache_features"] = cache
    data["model"]["backbone"]["batch_norm"] = "frozen"  # a frozen backbone, BatchNorm included
    data["data"]["options"]["n"] = n
    data["training"]["early_stopping"] = None
    data["training"]["stages"] = [{"name": "frozen", "epochs": epochs, "learning_rate": 1e-3,
                                   "trainable": "heads"}]
    keras.backend.clear_session()
    done = train(validate_recipe(data, RECIPE), results, echo=lambda line: None)
    info = json.loads(done.file("run.json").read_text())
    metrics = pd.read_csv(done.file("metrics.csv"))
    test = metrics[(metrics.split == "test") & (metrics.metric == "accuracy")].set_index("task")["value"]
    return {"seconds": info["stages"][0]["seconds"], "cached": info["stages"][0]["cached_features"],
            **{f"{task}_accuracy": float(v) for task, v in test.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n", type=int, default=600, help="images (70 % train, 15 % validation)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for cache in (True, False):
                rows.append({"repeat": repeat, **run(cache, args.epochs, Path(folder), args.n)})
                print(rows[-1], flush=True)
    cached = [r for r in rows if r["cached"]]
    plain = [r for r in rows if not r["cached"]]
    summary = {
        "epochs": args.epochs, "repeats": args.repeats, "images": args.n,
        "cached_median_s": statistics.median(r["seconds"] for r in cached),
        "uncached_median_s": statistics.median(r["seconds"] for r in plain),
        "accuracy_cached": {k: cached[0][k] for k in cached[0] if k.endswith("_accuracy")},
        "accuracy_uncached": {k: plain[0][k] for k in plain[0] if k.endswith("_accuracy")},
        "runs": rows,
    }
    summary["speedup"] = summary["uncached_median_s"] / summary["cached_median_s"]
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
