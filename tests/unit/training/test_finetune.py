"""Staged fine-tuning: what is frozen, BatchNorm statistics, feature caching, weight sources."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from mtl_runner.models.images import encoder_and_backbone
from mtl_runner.recipe import validate_recipe
from mtl_runner.training.stages import set_trainable

SHAPES_RECIPE = {
    "name": "ft",
    "data": {"source": "builtin", "name": "shapes", "options": {"n": 48, "size": 32, "seed": 0},
             "image": {"size": 32}},
    "tasks": {"shape": {"type": "classification", "label": "shape"},
              "colour": {"type": "classification", "label": "colour"}},
    "model": {"backbone": {"name": "resnet50", "weights": "none", "batch_norm": "frozen"},
              "trunk": {"type": "shared_bottom", "units": []}, "heads": {"units": []}},
    "training": {"batch_size": 16, "early_stopping": None,
                 "stages": [{"name": "warmup", "epochs": 1, "learning_rate": 1e-3, "trainable": "heads"},
                            {"name": "finetune", "epochs": 1, "learning_rate": 1e-4, "trainable": "all"}]},
}


def recipe(tmp_path, **changes):
    data = json.loads(json.dumps(SHAPES_RECIPE))
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return validate_recipe(data, tmp_path / "recipe.yaml")


def train(tmp_path, loaded):
    from mtl_runner.training.run import train as run_training

    keras.backend.clear_session()
    lines = []
    run = run_training(loaded, tmp_path / "results", echo=lines.append)
    return run, lines


def test_default_stages_with_a_backbone(tmp_path):
    data = json.loads(json.dumps(SHAPES_RECIPE))
    del data["training"]["stages"]
    data["training"]["epochs"] = 3
    stages = validate_recipe(data, tmp_path / "r.yaml").recipe.training.stages
    assert [(s.name, s.epochs, s.trainable) for s in stages] == [("warmup", 3, "heads"), ("finetune", 3, "all")]
    assert stages[1].learning_rate == pytest.approx(stages[0].learning_rate / 100)


def test_trainable_choices_and_batch_norm_stays_frozen(tmp_path):
    from mtl_runner.models.build import build_model
    from mtl_runner.training.prepare import prepare

    loaded = recipe(tmp_path)
    prepared = prepare(loaded.frame, loaded.recipe)
    keras.backend.clear_session()
    model = build_model(loaded.recipe, None, prepared.tasks, prepared.infos)
    encoder, backbone = encoder_and_backbone(model)
    weighted = [layer for layer in backbone.layers if layer.weights]

    set_trainable(model, "heads", ["shape", "colour"])
    assert not encoder.trainable and not any(w for w in backbone.trainable_weights)
    assert model.get_layer("decoder").trainable

    set_trainable(model, "top:3", ["shape", "colour"])
    trainable = [layer.name for layer in backbone.layers if layer.trainable and layer.weights]
    expected = [layer.name for layer in weighted[-3:]
                if not isinstance(layer, keras.layers.BatchNormalization)]
    assert trainable == expected and len(trainable) >= 1

    set_trainable(model, "top:10%", ["shape", "colour"])
    assert sum(1 for layer in weighted if layer.trainable) <= round(len(weighted) * 0.1)

    set_trainable(model, "conv5_", ["shape", "colour"])
    names = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert names and all(n.startswith("conv5_") and not n.endswith("_bn") for n in names)

    set_trainable(model, "all", ["shape", "colour"])
    assert all(not layer.trainable for layer in backbone.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    assert all(layer.trainable for layer in weighted if not isinstance(layer, keras.layers.BatchNormalization))


def test_fine_tuning_changes_weights_but_not_batch_norm_statistics(tmp_path):
    run, _ = train(tmp_path, recipe(tmp_path))
    from mtl_runner.models.build import build_model  # noqa: F401  (registers custom layers)

    trained = keras.saving.load_model(run.file("model.keras"), compile=False)
    _, backbone = encoder_and_backbone(trained)
    bn = backbone.get_layer("conv1_bn")
    # a fresh, untrained ResNet50 starts with moving mean 0 and variance 1: unchanged after training
    assert np.allclose(bn.moving_mean.numpy(), 0.0) and np.allclose(bn.moving_variance.numpy(), 1.0)
    history = pd.read_csv(run.file("history.csv"))
    assert history["stage"].tolist() == ["warmup", "finetune"] and history["epoch"].tolist() == [1, 2]
    info = json.loads(run.file("run.json").read_text())
    assert [s["name"] for s in info["stages"]] == ["warmup", "finetune"]
    assert info["stages"][0]["cached_features"] and not info["stages"][1]["cached_features"]
    assert info["stages"][0]["trainable_parameters"] < info["stages"][1]["trainable_parameters"]


def test_cached_features_train_the_same_heads_as_the_uncached_path(tmp_path):
    warmup_only = {"training__stages": [{"name": "warmup", "epochs": 2, "learning_rate": 1e-2,
                                         "trainable": "heads"}]}
    runs = {}
    for cache in (True, False):
        folder = tmp_path / str(cache)
        folder.mkdir()
        loaded = recipe(folder, training__cache_features=cache, **warmup_only)
        run, lines = train(folder, loaded)
        runs[cache] = run
        assert any("cached backbone features" in line for line in lines) == cache
    a, b = (pd.read_csv(runs[c].file("history.csv")) for c in (True, False))
    assert np.allclose(a["val_loss"], b["val_loss"], rtol=1e-4, atol=1e-5)
    ma, mb = (pd.read_csv(runs[c].file("metrics.csv")) for c in (True, False))
    assert np.allclose(ma["value"], mb["value"], atol=1e-4)


@pytest.mark.slow  # make test runs the run: path through recipes/pretrain_then_finetune
def test_weights_from_an_earlier_run_start_the_backbone(tmp_path):
    first, _ = train(tmp_path, recipe(tmp_path, training__stages__1__epochs=1))
    loaded = recipe(tmp_path, model__backbone={"name": "resnet50", "weights": "run:ft"},
                    training__stages=[{"name": "warmup", "epochs": 1, "learning_rate": 1e-3,
                                       "trainable": "heads"}])
    second, lines = train(tmp_path, loaded)
    info = json.loads(second.file("run.json").read_text())
    assert info["parent"] == first.run_id
    assert f"backbone weights from run {first.run_id}" in lines
    a = keras.saving.load_model(first.file("model.keras"), compile=False)
    b = keras.saving.load_model(second.file("model.keras"), compile=False)
    # the second run froze its backbone: it still holds exactly the first run's weights
    for wa, wb in zip(encoder_and_backbone(a)[1].weights, encoder_and_backbone(b)[1].weights):
        assert np.array_equal(wa.numpy(), wb.numpy())


def test_imagenet_without_a_network_is_a_clear_error(tmp_path, monkeypatch, runner):
    from mtl_runner.cli import cli
    from mtl_runner.models.backbones.base import Backbone

    real_build = Backbone.build.__func__

    def offline(cls, shape, weights, pooling):
        if weights == "imagenet":
            raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                            "[Errno -2] Name or service not known")
        return real_build(cls, shape, weights, pooling)

    monkeypatch.setattr(Backbone, "build", classmethod(offline))
    folder = tmp_path / "images"
    from tests.unit.data.test_images import save

    for label in ("a", "b"):
        for i in range(3):
            save(folder / label / f"{i}.png", 40 * i)
    outcome = runner.invoke(cli, ["finetune", "--data", str(folder), "--image-size", "32",
                                  "--epochs", "1", "--results", str(tmp_path / "r")])
    assert outcome.exit_code == 1
    assert "could not load the ImageNet weights of resnet50" in outcome.output
    assert "--weights FILE" in outcome.output and "--weights none" in outcome.output
    assert "Traceback" not in outcome.output
