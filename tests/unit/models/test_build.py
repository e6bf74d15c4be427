"""The assembled model: raw rows in, one named output per task, preprocessing inside."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_runner.models.build import build_model
from mtl_runner.training.compile import compile_for_training
from mtl_runner.recipe import load_recipe
from mtl_runner.training.prepare import make_dataset, prepare


@pytest.fixture
def built(write_recipe):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    recipe = load_recipe(write_recipe())
    prepared = prepare(recipe.frame, recipe.recipe)
    model = build_model(recipe.recipe, prepared.spec, prepared.tasks, prepared.infos)
    trainer = compile_for_training(model, recipe.recipe, prepared.tasks, prepared.infos)
    return recipe.recipe, prepared, model, trainer


def test_named_inputs_and_outputs(built):
    _, prepared, model, _ = built
    assert sorted(model.input_names if hasattr(model, "input_names") else model.input) == \
        ["colour", "x1", "x2"]
    assert sorted(model.output_names) == ["flag", "kind", "target"]
    assert model.get_layer("kind").units == 3 and model.get_layer("flag").units == 1


def test_one_step_changes_every_shared_weight(built):
    recipe, prepared, model, trainer = built
    shared = [w for w in model.trainable_weights if w.path.startswith("shared_")]
    assert shared, "the trunk has trainable weights"
    before = [w.numpy().copy() for w in shared]
    batch = next(iter(make_dataset(prepared, "train", 16, 0, shuffle=False)))
    logs = trainer.train_on_batch(*batch, return_dict=True)
    assert np.isfinite(logs["loss"])
    for weight, old in zip(shared, before):
        assert not np.allclose(weight.numpy(), old), weight.path


def test_a_masked_task_contributes_no_gradient(built):
    _, prepared, model, trainer = built
    x, y, masks = next(iter(make_dataset(prepared, "train", 16, 0, shuffle=False)))
    masks = {name: tf.zeros_like(m) if name != "kind" else m for name, m in masks.items()}
    head = model.get_layer("target")
    before = [w.numpy().copy() for w in head.weights]
    kind_before = model.get_layer("kind").kernel.numpy().copy()
    trainer.train_on_batch(x, y, masks)
    assert all(np.array_equal(w.numpy(), old) for w, old in zip(head.weights, before))
    # the task that kept its labels did train: its head moved
    assert not np.allclose(model.get_layer("kind").kernel.numpy(), kind_before)


def test_saved_model_takes_raw_rows_with_missing_and_unseen_values(built, tmp_path):
    _, prepared, model, _ = built
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    rows = {"x1": np.array([[0.5], [0.1]], "float32"), "x2": np.array([[np.nan], [1.0]], "float32"),
            "colour": np.array([["red"], ["purple"]])}
    data = tf.data.Dataset.from_tensor_slices(rows).batch(2)
    a, b = model.predict(data, verbose=0), reloaded.predict(data, verbose=0)
    for name in a:
        assert np.all(np.isfinite(a[name])) and np.allclose(a[name], b[name], atol=1e-6)
    assert np.allclose(a["kind"].sum(axis=1), 1.0, atol=1e-5)
