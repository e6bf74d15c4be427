"""`split.stratify: true` stratifies on the label of the first task whose type stratifies."""

from mtl_runner.recipe import load_recipe
from tests.conftest import TINY_RECIPE


def test_stratify_true_picks_the_first_class_label_past_regression(write_recipe):
    text = TINY_RECIPE.replace("  exclude: [tags]\n", "  exclude: [tags]\n  split: {stratify: true}\n")
    text = text.replace("  kind: {type: classification, label: kind}\n", "")
    text = text.replace("  flag: {type: binary, label: flag}\n", "")
    text = text.replace("  target: {type: regression, label: target}\n",
                        "  target: {type: regression, label: target}\n"
                        "  flag: {type: binary, label: flag}\n"
                        "  kind: {type: classification, label: kind}\n")
    recipe = load_recipe(write_recipe(text)).recipe
    assert recipe.data.split.stratify == "flag"


def test_stratify_true_without_a_class_label_does_not_stratify(write_recipe):
    text = TINY_RECIPE.replace("  exclude: [tags]\n", "  exclude: [tags, kind, flag]\n"
                               "  split: {stratify: true}\n")
    text = text.replace("  kind: {type: classification, label: kind}\n", "")
    text = text.replace("  flag: {type: binary, label: flag}\n", "")
    recipe = load_recipe(write_recipe(text)).recipe
    assert recipe.data.split.stratify is False
