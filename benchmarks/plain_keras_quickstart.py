"""recipes/quickstart.yaml written by hand in plain Keras: the baseline `mtl train` is timed against.

The same Palmer penguins table, a stratified 70/15/15 split, train-fitted preprocessing
(mean imputation with a missing indicator, normalization, one-hot island), a [64, 32] shared
trunk with dropout 0.1, a [16] head per task (species softmax, sex sigmoid, standardized body
mass with MSE), Adam 1e-3, batch 32, up to 200 epochs with early stopping on val_loss
(patience 20, best weights restored), then evaluation on the test split.

    python benchmarks/plain_keras_quickstart.py [--epochs 200]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.model_selection import train_test_split

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


def features(frame: pd.DataFrame, means: pd.Series, islands: list[str]) -> np.ndarray:
    numeric = frame[NUMERIC]
    missing = numeric.isna().astype("float32").to_numpy()
    filled = numeric.fillna(means).to_numpy("float32")
    island = np.stack([(frame["island"] == name).to_numpy("float32") for name in islands], axis=1)
    return np.concatenate([filled, missing, island], axis=1)


def targets(frame: pd.DataFrame, species: list[str], mass_mean: float, mass_std: float):
    y = {"species": keras.utils.to_categorical(frame["species"].map(species.index), len(species)),
         "sex": (frame["sex"] == "male").to_numpy("float32")[:, None],
         "body_mass": ((frame["body_mass_g"].fillna(mass_mean) - mass_mean) / mass_std)
         .to_numpy("float32")[:, None]}
    # a penguin of unknown sex (or mass) still trains the other tasks
    w = {"species": np.ones(len(frame), "float32"),
         "sex": frame["sex"].notna().to_numpy("float32"),
         "body_mass": frame["body_mass_g"].notna().to_numpy("float32")}
    return y, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    frame = load_penguins()
    train, rest = train_test_split(frame, test_size=0.30, stratify=frame["species"], random_state=0)
    validation, test = train_test_split(rest, test_size=0.50, stratify=rest["species"], random_state=0)

    means = train[NUMERIC].mean()
    islands = sorted(train["island"].dropna().unique())
    species = sorted(frame["species"].unique())
    mass_mean, mass_std = train["body_mass_g"].mean(), train["body_mass_g"].std()
    x = {name: features(part, means, islands) for name, part in
         (("train", train), ("validation", validation), ("test", test))}
    yw = {name: targets(part, species, mass_mean, mass_std) for name, part in
          (("train", train), ("validation", validation), ("test", test))}

    inputs = keras.Input(shape=(x["train"].shape[1],))
    normalize = keras.layers.Normalization()
    normalize.adapt(x["train"])
    h = normalize(inputs)
    for units in (64, 32):
        h = keras.layers.Dense(units, activation="relu")(h)
        h = keras.layers.Dropout(0.1)(h)
    outputs = {}
    for name, units, activation in (("species", len(species), "softmax"), ("sex", 1, "sigmoid"),
                                    ("body_mass", 1, None)):
        head = keras.layers.Dense(16, activation="relu")(h)
        outputs[name] = keras.layers.Dense(units, activation=activation, name=name)(head)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"species": "categorical_crossentropy", "sex": "binary_crossentropy",
                        "body_mass": "mse"},
                  weighted_metrics={"species": ["accuracy"], "sex": ["accuracy", "auc"],
                                    "body_mass": ["mae"]})
    fitted = model.fit(x["train"], yw["train"][0], sample_weight=yw["train"][1], batch_size=32,
              epochs=args.epochs, verbose=0,
              validation_data=(x["validation"], *yw["validation"]),
              callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=20,
                                                       restore_best_weights=True)])
    scores = model.evaluate(x["test"], yw["test"][0], sample_weight=yw["test"][1], verbose=0,
                            return_dict=True)
    model.save("/tmp/plain_keras_quickstart.keras")
    print({k: round(float(v), 4) for k, v in scores.items()})
    print(f"done in {time.perf_counter() - started:.1f}s ({len(fitted.history['loss'])} epochs)")


if __name__ == "__main__":
    main()
