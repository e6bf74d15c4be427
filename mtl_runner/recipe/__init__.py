"""Recipes: the YAML file a user writes, its schema, its loader and its checks."""

from mtl_runner.recipe.load import LoadedRecipe, load_recipe, validate_recipe
from mtl_runner.recipe.schema import Recipe

__all__ = ["LoadedRecipe", "Recipe", "load_recipe", "validate_recipe"]
