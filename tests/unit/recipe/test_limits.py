"""Reading limits and value rules of the recipe loader (issue 13): what validate accepts,
training does not refuse, and nothing read can exhaust memory or hang."""

from __future__ import annotations

import os
import re
import typing

import pytest
from pydantic import BaseModel, ValidationError

from mtl_runner.errors import RecipeError, column_list, names_can_be_shown, shown_name
from mtl_runner.reading import FileRefused, check_regular_file, read_bytes_limited
from mtl_runner.recipe import load_recipe, schema
from mtl_runner.recipe.load import MAX_YAML_DEPTH, parse_yaml, YamlLimit
from tests.conftest import TINY_RECIPE


def problems(path, overrides=(), check_data=False) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, overrides, check_data=check_data)
    return [str(p) for p in caught.value.problems]


# -- files ------------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(FileRefused, match="FIFO"):
        check_regular_file(tmp_path / "pipe", 100, "data file")
    with pytest.raises(FileRefused, match="FIFO"):
        read_bytes_limited(tmp_path / "pipe", 100, "recipe")


@pytest.mark.parametrize("path, kind", [("/dev/zero", "character device"), ("/", "directory")])
def test_devices_and_folders_are_refused(path, kind):
    with pytest.raises(FileRefused, match=kind):
        read_bytes_limited(path, 100, "recipe")


def test_a_file_is_read_up_to_its_limit_only(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(FileRefused, match="101 bytes; recipes are limited to 100"):
        read_bytes_limited(tmp_path / "big", 100, "recipe")
    assert read_bytes_limited(tmp_path / "big", 101, "recipe") == b"x" * 101


def test_a_file_that_reports_no_size_is_still_bounded():
    """/proc files report a size of 0 and hold more: at most limit + 1 bytes are read."""
    with pytest.raises(FileRefused, match="more than 3 bytes"):
        read_bytes_limited("/proc/self/status", 3, "recipe")


def test_the_data_limit_comes_from_the_environment(monkeypatch):
    from mtl_runner.reading import data_file_limit

    monkeypatch.setenv("MTL_MAX_DATA_BYTES", "1234")
    assert data_file_limit() == 1234
    monkeypatch.delenv("MTL_MAX_DATA_BYTES")
    assert data_file_limit() >= 64 << 20


# -- YAML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "{a: " * 3000 + "1" + "}" * 3000,
                                  "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"])
def test_nesting_is_bounded_before_recursion(text):
    with pytest.raises(YamlLimit, match=f"more than {MAX_YAML_DEPTH} levels"):
        parse_yaml(text)


def test_alias_expansion_is_bounded():
    laughs = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    with pytest.raises(YamlLimit, match="once aliases are expanded"):
        parse_yaml(laughs)


def test_aliases_nested_by_reference_are_bounded_in_depth():
    chain = "x0: &x0 [1]\n" + "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, 200))
    with pytest.raises(YamlLimit, match="nests more than"):
        parse_yaml(chain)


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n"])
def test_a_recursive_alias_is_refused(text):
    with pytest.raises(YamlLimit, match="recursive alias"):
        parse_yaml(text)


def test_ordinary_aliases_and_merge_keys_still_work():
    _, data = parse_yaml("base: &base {type: regression, label: y}\nt: {<<: *base, weight: 2}\nu: *base\n")
    assert data["t"] == {"type": "regression", "label": "y", "weight": 2}
    assert data["u"] == {"type": "regression", "label": "y"}


def test_a_recipe_file_that_is_too_deep_names_the_line(write_recipe):
    path = write_recipe(TINY_RECIPE + "description: " + "[" * 100 + "]" * 100 + "\n")
    [message] = problems(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: the YAML nests more than {MAX_YAML_DEPTH}", message)


# -- values -----------------------------------------------------------------------------------

NUMBER_KEYS = ["training.epochs", "training.batch_size", "training.optimizer.learning_rate",
               "data.split.validation", "runtime.checkpoint_seconds", "tasks.kind.weight", "seed",
               "model.trunk.units.0", "model.heads.units.0", "training.early_stopping.patience"]


@pytest.mark.parametrize("key", NUMBER_KEYS)
@pytest.mark.parametrize("value", ["true", "false"])
def test_a_boolean_is_not_read_as_a_number(write_recipe, key, value):
    [message] = problems(write_recipe(), [f"{key}={value}"])
    assert message == f"--set: {key}: a number is expected, not a boolean. Received: {value}."


def test_a_boolean_in_the_file_names_its_line(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("epochs: 2", "epochs: yes"))
    [message] = problems(path)
    assert message == f"{path}:14: training.epochs: a number is expected, not a boolean. Received: true."


def test_a_boolean_of_a_registered_strategy_is_refused(write_recipe):
    [message] = problems(write_recipe(), ["weighting={name: dwa, temperature: true}"])
    assert "weighting.temperature: a number is expected, not a boolean" in message


@pytest.mark.parametrize("override", ["tasks.kind.weight=.inf", "weighting={name: dwa, temperature: .inf}",
                                      "training.early_stopping.min_delta=.inf",
                                      "runtime.checkpoint_seconds=inf"])
def test_numbers_are_finite(write_recipe, override):
    [message] = problems(write_recipe(), [override])
    assert "a finite number is expected" in message


def test_booleans_stay_booleans(write_recipe):
    loaded = load_recipe(write_recipe(), ["runtime.deterministic=true", "tasks.flag.positive=true",
                                          "runtime.jit_compile=false"], check_data=False)
    assert loaded.recipe.runtime.deterministic is True and loaded.recipe.tasks["flag"].positive is True


SIZE_FIELD = re.compile(r"units|^num_|epochs|batch_size|iterations|_every$|^steps_per")


def _configs() -> list[type[BaseModel]]:
    from mtl_runner.models.trunks import TRUNKS
    from mtl_runner.weighting import WEIGHTINGS

    found = [cls.Config for _, cls in TRUNKS.items()] + [cls.Config for _, cls in WEIGHTINGS.items()]
    found += [v for v in vars(schema).values() if isinstance(v, type) and issubclass(v, BaseModel)
              and v.__module__ == schema.__name__]
    return found


def _size_fields():
    for config in _configs():
        for name, field in config.model_fields.items():
            if SIZE_FIELD.search(name):
                yield pytest.param(config, name, field, id=f"{config.__qualname__}.{name}")


@pytest.mark.parametrize("config, name, field", list(_size_fields()))
def test_every_size_or_count_refuses_zero(config, name, field):
    """Layer widths, expert counts, epochs, iterations: 0 passes nothing to Keras that works."""
    is_list = typing.get_origin(field.annotation) is list or "list[" in str(field.annotation)
    value = [0] if is_list else 0
    candidates = [{name: value}, {name: value, "name": "x", "epochs": 1, "learning_rate": 0.1}]
    for data in candidates:
        try:
            config.model_validate(data)
        except ValidationError as error:
            if any(e["loc"][0] == name for e in error.errors()):
                return
            continue
        pytest.fail(f"{config.__qualname__}.{name} accepted {value}")


def test_seeds_fit_in_32_bits(write_recipe):
    [message] = problems(write_recipe(), ["seed=4294967296"])
    assert "seed: input should be less than or equal to 4294967295" in message


def test_an_unknown_activation_is_refused_with_a_suggestion(write_recipe):
    [message] = problems(write_recipe(), ["model.heads.activation=rleu"])
    assert "model.heads.activation: unknown activation. Received: 'rleu'. Did you mean 'relu'?" in message


def test_the_activations_accepted_are_the_ones_keras_applies_alone():
    import keras
    import numpy as np

    from mtl_runner.recipe.checks import ACTIVATIONS

    for name in ACTIVATIONS:
        layer = keras.layers.Dense(3, activation=name)
        assert np.isfinite(keras.ops.convert_to_numpy(layer(np.ones((2, 4), "float32")))).all(), name


# -- messages ---------------------------------------------------------------------------------


def test_names_are_shown_only_for_tables():
    assert names_can_be_shown(["a", "b"], 1)
    assert not names_can_be_shown(["only one"], 10)
    assert not names_can_be_shown(["a", "b"], 0)
    assert not names_can_be_shown(["KEY=v\x00OTHER=w", "b"], 3)


def test_shown_names_are_short_and_bounded():
    assert shown_name("x" * 100) == repr("x" * 37 + "...")
    assert shown_name("a\nb") == repr("a\\nb")
    listed = column_list([f"c{i}" for i in range(30)])
    assert listed.endswith("... (30 in all)") and "'c19'" in listed and "'c20'" not in listed
