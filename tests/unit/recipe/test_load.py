"""The recipe loader: YAML with lines, overrides typed through the schema, located errors."""

from __future__ import annotations

import pytest

from mtl_runner.errors import RecipeError
from mtl_runner.recipe import load_recipe
from tests.conftest import TINY_RECIPE


def problems(path, overrides=(), check_data=True) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, overrides, check_data=check_data)
    return [str(p) for p in caught.value.problems]


def test_valid_recipe_fills_defaults(write_recipe):
    loaded = load_recipe(write_recipe())
    recipe = loaded.recipe
    assert recipe.training.optimizer.name == "adam"
    assert recipe.training.optimizer.learning_rate == pytest.approx(1e-3)
    assert recipe.data.split.validation == pytest.approx(0.15)
    assert recipe.tasks["flag"].weight == 1.0
    assert loaded.frame is not None and len(loaded.frame) == 64


def test_exponent_without_dot_reads_as_number(write_recipe):
    path = write_recipe(TINY_RECIPE + "description: x\n").parent / "recipe.yaml"
    text = path.read_text().replace("  batch_size: 16", "  batch_size: 16\n  optimizer: {learning_rate: 1e-3}")
    path.write_text(text)
    rate = load_recipe(path).recipe.training.optimizer.learning_rate
    assert isinstance(rate, float) and rate == pytest.approx(0.001)


def test_misspelled_key_names_file_line_key_and_suggestion(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("  batch_size: 16", "  bach_size: 16"))
    [message] = problems(path)
    assert message == (f"{path}:15: training.bach_size: unknown key. Did you mean 'batch_size'?")


def test_wrong_type_reports_the_received_value(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("epochs: 2", "epochs: two"))
    [message] = problems(path)
    assert message.startswith(f"{path}:14: training.epochs: ")
    assert "integer" in message and "Received: 'two'" in message


def test_unknown_task_type_suggests_the_closest(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("{type: binary, label: flag}", "{type: binry, label: flag}"))
    [message] = problems(path)
    assert message == f"{path}:8: tasks.flag.type: unknown value. Received: 'binry'. Did you mean 'binary'?"


def test_unknown_trunk_type_suggests_the_closest(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("type: shared_bottom", "type: shared_botom"))
    [message] = problems(path)
    assert "model.trunk" in message and "Did you mean 'shared_bottom'?" in message
    assert message.startswith(f"{path}:11:")


def test_missing_label_column_is_found_before_training(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("label: flag", "label: flg"))
    [message] = problems(path)
    assert message == (f"{path}:8: tasks.flag.label: label column 'flg' is not a column of the data. "
                       "Did you mean 'flag'?")


def test_all_problems_are_reported_at_once(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("epochs: 2", "epochs: -1").replace("units: [4]", "unit: [4]"))
    messages = problems(path)
    assert len(messages) == 2
    assert any("training.epochs" in m and "greater than or equal to 1" in m for m in messages)
    assert any("model.heads.unit: unknown key. Did you mean 'units'?" in m for m in messages)


def test_missing_required_key_points_at_the_parent(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("  kind: {type: classification, label: kind}\n", "  kind: {type: classification}\n"))
    [message] = problems(path)
    assert message == f"{path}:7: tasks.kind.label: required key is missing."


def test_duplicate_keys_are_rejected(write_recipe):
    path = write_recipe(TINY_RECIPE + "seed: 1\n")
    [message] = problems(path)
    assert message.startswith(f"{path}:17: seed: duplicate key")


def test_tabs_are_invalid_yaml_with_a_line(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("  epochs: 2", "\tepochs: 2"))
    [message] = problems(path)
    assert message.startswith(f"{path}:14: invalid YAML")


def test_python_tags_are_refused(write_recipe):
    path = write_recipe(TINY_RECIPE + "extra: !!python/object/apply:os.system ['echo hi']\n")
    [message] = problems(path)
    assert "invalid YAML" in message and "python/object/apply" in message


@pytest.mark.parametrize("text, expected", [
    ("", "the recipe is empty"),
    ("- a\n- b\n", "a recipe is a mapping of keys"),
])
def test_not_a_mapping(write_recipe, text, expected):
    [message] = problems(write_recipe(text))
    assert expected in message


def test_not_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    [message] = problems(path)
    assert message.startswith(f"{path}:1: the file is not valid UTF-8 text")


def test_file_not_found(tmp_path):
    [message] = problems(tmp_path / "nope.yaml")
    assert "nope.yaml: file not found" in message


def test_overrides_are_typed_through_the_schema(write_recipe):
    loaded = load_recipe(write_recipe(), ["training.epochs=5", "training.optimizer.learning_rate=1e-2",
                                          "model.trunk.units=[16, 8]"])
    assert loaded.recipe.training.epochs == 5
    assert loaded.recipe.training.optimizer.learning_rate == pytest.approx(0.01)
    assert loaded.recipe.model.trunk.units == [16, 8]


def test_a_bad_override_is_blamed_on_the_override(write_recipe):
    [message] = problems(write_recipe(), ["tasks.flag.type=binry"])
    assert message == "--set: tasks.flag.type: unknown value. Received: 'binry'. Did you mean 'binary'?"


def test_an_override_without_equals_sign(write_recipe):
    [message] = problems(write_recipe(), ["training.epochs"])
    assert "an override is written key=value" in message


def test_checks_can_skip_the_data(write_recipe):
    loaded = load_recipe(write_recipe(TINY_RECIPE.replace("label: flag", "label: flg")), check_data=False)
    assert loaded.frame is None


def test_errors_inside_a_tagged_union_name_the_real_key(write_recipe):
    [dropout] = problems(write_recipe(), ["model.trunk.dropout=2"])
    assert dropout.startswith("--set: model.trunk.dropout: input should be less than 1")
    [typo] = problems(write_recipe(), ["model.trunk.unitz=[4]"])
    assert typo == "--set: model.trunk.unitz: unknown key. Did you mean 'units'?"
