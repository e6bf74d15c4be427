"""Model inputs: one named Keras input per feature column, preprocessed inside the model."""

from __future__ import annotations

import keras

from mtl_runner.data.features import FeatureSpec, input_name
from mtl_runner.models.layers import ImputeMissing, MissingIndicator


def build_inputs(spec: FeatureSpec):
    """Named inputs and the preprocessed feature vector they feed.

    Numeric columns are concatenated, imputed with their train means, normalized with train
    statistics, and followed by a 0/1 indicator for each column that has missing values.
    Categorical columns are one-hot encoded by a `StringLookup` fitted on the train split; a
    category not seen in training, or a missing one, falls into the out-of-vocabulary slot.

    Returns:
        (inputs, features): a dict of `keras.Input` by name, and the feature tensor.
    """
    inputs = {}
    parts = []
    if spec.numeric:
        numeric = [keras.Input(shape=(1,), name=input_name(c), dtype="float32") for c in spec.numeric]
        inputs.update({i.name: i for i in numeric})
        raw = numeric[0] if len(numeric) == 1 else keras.layers.Concatenate(name="numeric")(numeric)
        filled = ImputeMissing(spec.fill, name="impute")(raw)
        parts.append(keras.layers.Normalization(mean=spec.mean, variance=spec.variance,
                                                name="normalize")(filled))
        if spec.indicate:
            columns = [spec.numeric.index(c) for c in spec.indicate]
            parts.append(MissingIndicator(columns, name="missing_indicator")(raw))
    for column in spec.categorical:
        name = input_name(column)
        text = keras.Input(shape=(1,), name=name, dtype="string")
        inputs[name] = text
        parts.append(keras.layers.StringLookup(vocabulary=spec.vocabulary[column] or [""],
                                               output_mode="one_hot", name=f"{name}_onehot")(text))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return inputs, features
