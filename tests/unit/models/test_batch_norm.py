"""A backbone's BatchNorm: `auto` resolves by the weights, `train` gives features a head can
learn from, recalibration sets exact statistics, and a from-scratch MobileNetV2 learns."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from mtl_runner.models.batch_norm import (DEGENERATE_SPREAD, TRAIN_MOMENTUM, batch_norm_layers,
                                          feature_spread, recalibrate)
from mtl_runner.models.images import encoder_and_backbone
from mtl_runner.recipe import validate_recipe
from mtl_runner.recipe.schema import BackboneConfig

RECIPE = {
    "name": "bn",
    "data": {"source": "builtin", "name": "shapes", "options": {"n": 48, "size": 32, "seed": 0},
             "image": {"size": 32}},
    "tasks": {"colour": {"type": "classification", "label": "colour"}},
    "model": {"backbone": {"name": "mobilenet_v2", "weights": "none"},
              "trunk": {"type": "shared_bottom", "units": []}, "heads": {"units": []}},
    "training": {"batch_size": 16, "early_stopping": None,
                 "stages": [{"name": "all", "epochs": 1, "learning_rate": 1e-3, "trainable": "all"}]},
    "seed": 0,
}


def loaded(tmp_path, batch_norm: str = "auto", **changes):
    data = json.loads(json.dumps(RECIPE))
    data["model"]["backbone"]["batch_norm"] = batch_norm
    for key, value in changes.items():
        data["training"][key] = value
    return validate_recipe(data, tmp_path / "recipe.yaml")


def built(tmp_path, batch_norm: str):
    from mtl_runner.models.build import build_model
    from mtl_runner.training.prepare import prepare

    recipe = loaded(tmp_path, batch_norm)
    prepared = prepare(recipe.frame, recipe.recipe)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(recipe.recipe, None, prepared.tasks, prepared.infos)
    return recipe.recipe, prepared, model


@pytest.mark.parametrize("weights, setting, mode", [
    ("none", "auto", "train"), ("imagenet", "auto", "frozen"), ("weights.h5", "auto", "frozen"),
    ("run:pretrain", "auto", "frozen"), ("none", "frozen", "frozen"), ("imagenet", "train", "train"),
])
def test_auto_trains_batch_norm_only_for_random_weights(weights, setting, mode):
    config = BackboneConfig(name="mobilenet_v2", weights=weights, batch_norm=setting)
    assert config.batch_norm_mode() == mode


def test_an_unknown_batch_norm_setting_is_a_recipe_error(tmp_path):
    from mtl_runner.errors import RecipeError

    with pytest.raises(RecipeError, match="model.backbone.batch_norm"):
        loaded(tmp_path, "learn")


def test_trained_batch_norm_trains_in_every_stage_and_is_never_cached(tmp_path):
    from mtl_runner.training.stages import can_cache_features, set_trainable

    recipe, _, model = built(tmp_path, "train")
    encoder, backbone = encoder_and_backbone(model)
    layers = batch_norm_layers(backbone)
    assert layers and all(layer.momentum == TRAIN_MOMENTUM for layer in layers)
    for trainable in ("heads", "all", "top:3", "Conv1"):
        set_trainable(model, trainable, ["colour"], "train")
        assert all(layer.trainable for layer in layers), trainable
    set_trainable(model, "heads", ["colour"], "train")
    convolutions = [w for w in encoder.trainable_weights if "kernel" in w.path]
    assert not convolutions and encoder.trainable_weights  # γ and β only
    heads = recipe.training.stages[0].model_copy(update={"trainable": "heads"})
    assert not can_cache_features(model, recipe, heads)

    recipe, _, model = built(tmp_path, "frozen")
    set_trainable(model, "all", ["colour"], "frozen")
    assert not any(layer.trainable for layer in batch_norm_layers(encoder_and_backbone(model)[1]))
    assert can_cache_features(model, recipe, heads)


def test_random_weights_give_features_only_with_batch_norm_in_training_mode(tmp_path):
    _, prepared, model = built(tmp_path, "train")
    images = prepared.x["train"]["image"][:16]
    _, backbone = encoder_and_backbone(model)
    before = [layer.moving_mean.numpy().copy() for layer in batch_norm_layers(backbone)]
    assert feature_spread(model, images, train_mode=False) < DEGENERATE_SPREAD  # about 1e-12
    assert feature_spread(model, images, train_mode=True) > 1e-2
    after = [layer.moving_mean.numpy() for layer in batch_norm_layers(backbone)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # measuring changed nothing


def test_recalibration_sets_the_size_weighted_mean_of_batch_statistics(tmp_path):
    _, prepared, model = built(tmp_path, "train")
    images = prepared.x["train"]["image"].astype("float32")
    assert len(images) == 34  # batches of 16, 16 and 2
    encoder, backbone = encoder_and_backbone(model)
    first = backbone.get_layer("bn_Conv1")
    first.moving_mean.assign(np.full(first.moving_mean.shape, 5.0, "float32"))  # stale
    done = recalibrate(model, images, batch_size=16)
    assert done == {"rows": 34, "batches": 3, "batch_size": 16, "layers": len(batch_norm_layers(backbone))}
    assert first.momentum == TRAIN_MOMENTUM

    convolution = keras.Model(backbone.input, backbone.get_layer("Conv1").output)
    preprocess = encoder.get_layer("preprocess")
    means = [keras.ops.convert_to_numpy(convolution(preprocess(images[i:i + 16]))).mean(axis=(0, 1, 2))
             for i in (0, 16, 32)]
    expected = (16 * means[0] + 16 * means[1] + 2 * means[2]) / 34
    assert np.allclose(first.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-5)
    again = first.moving_mean.numpy().copy()
    recalibrate(model, images, batch_size=16)  # deterministic, whatever the statistics were
    assert np.allclose(first.moving_mean.numpy(), again, rtol=1e-6, atol=1e-7)


def test_degenerate_features_warn_once_on_the_console_and_in_run_json(tmp_path):
    from mtl_runner.models.batch_norm import check_features
    from mtl_runner.results import RunDirectory

    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    run.write_json("run.json", {"status": "running"})
    for mode, expected in (("frozen", 1), ("train", 0)):
        recipe, prepared, model = built(tmp_path, mode)
        lines: list[str] = []
        check_features(model, recipe, prepared, run, lines.append)
        assert len([line for line in lines if line.startswith("Warning:")]) == expected, mode
        assert run.read_json()["batch_norm"]["mode"] == mode
    [warning] = run.read_json()["warnings"]
    assert "barely vary" in warning and "batch_norm: train" in warning


@pytest.mark.slow
def test_frozen_batch_norm_with_random_weights_warns_once(tmp_path):
    from mtl_runner.training.run import train

    keras.backend.clear_session()
    lines: list[str] = []
    run = train(loaded(tmp_path, "frozen"), tmp_path / "results", echo=lines.append)
    warnings = [line for line in lines if line.startswith("Warning:")]
    assert len(warnings) == 1 and "barely vary" in warnings[0]
    assert "batch_norm: train" in warnings[0]
    info = json.loads(run.file("run.json").read_text())
    assert len(info["warnings"]) == 1 and "barely vary" in info["warnings"][0]
    assert info["batch_norm"] == {"mode": "frozen"}


def test_mobilenet_v2_from_random_weights_learns_and_it_shows_on_the_test_split(tmp_path):
    """Before `batch_norm`, this stayed at chance (a constant class: 0.35 on every split);
    without the recalibration, too. About 35 s on 2 cores (test accuracy 0.67)."""
    from mtl_runner.training.run import train

    keras.backend.clear_session()
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["options"]["n"] = 240
    recipe["data"]["split"] = {"validation": 0.2, "test": 0.2}
    recipe["training"].update(batch_size=32, stages=[
        {"name": "all", "epochs": 4, "learning_rate": 1e-3, "trainable": "all"}])
    lines: list[str] = []
    run = train(validate_recipe(recipe, tmp_path / "recipe.yaml"), tmp_path / "results",
                echo=lines.append)
    metrics = pd.read_csv(run.file("metrics.csv")).set_index(["split", "metric"])["value"]
    assert metrics["train", "accuracy"] > 0.7
    assert metrics["test", "accuracy"] > 0.5  # chance: 1/3
    info = json.loads(run.file("run.json").read_text())
    assert info["batch_norm"]["mode"] == "train"
    assert info["batch_norm"]["recalibrated"]["rows"] == 144
    assert not info.get("warnings") and not any(line.startswith("Warning:") for line in lines)
