"""Reading a recipe: safe YAML with the line of every key, `--set` overrides, validation.

`load_recipe` reports every problem at once, before anything is built, as a `RecipeError`
whose lines read `FILE:LINE: dotted.key: what is wrong. Received: X. Did you mean 'Y'?`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mtl_runner.errors import Problem, RecipeError, did_you_mean, received
from mtl_runner.recipe.schema import Recipe

MAX_RECIPE_BYTES = 1_000_000
OVERRIDE = "--set"

Path_ = tuple  # a key path, such as ("tasks", "sex", "type")


class RecipeLoader(yaml.SafeLoader):
    """The safe loader, reading `1e-3` as a float as YAML 1.2 does (1.1 wants `1.0e-3`)."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


@dataclasses.dataclass
class LoadedRecipe:
    """A validated recipe and where it came from.

    Attributes:
        recipe: the validated recipe, defaults filled in.
        path: the recipe file.
        lines: the 1-based line of each key path in the file.
        overrides: the `--set` strings that were applied.
        frame: the data table, read by the data checks and reused for training.
    """

    recipe: Recipe
    path: Path
    lines: dict[Path_, int]
    overrides: list[str]
    frame: Any = dataclasses.field(default=None, repr=False)  # the data table, once read
    frames: Any = dataclasses.field(default=None, repr=False)  # one per recipe.data_groups()

    def line_of(self, key: Path_) -> int | None:
        return line_of(self.lines, key)

    def problem(self, key: Path_, message: str, value: Any = None, hint: str = "") -> Problem:
        """A Problem located at `key` (a key path), for checks that run after loading."""
        return Problem(str(self.path), self.line_of(key), dotted(key), message,
                       None if value is None else str(value), hint)

    def resolve_path(self, name: str) -> Path:
        """A data path: as written if absolute, else from the recipe's folder, else from cwd."""
        candidate = Path(name).expanduser()
        if candidate.is_absolute():
            return candidate
        beside = self.path.parent / candidate
        return beside if beside.exists() or not candidate.exists() else candidate


def dotted(key: Path_) -> str:
    return ".".join(str(k) for k in key)


def line_of(lines: dict[Path_, int], key: Path_) -> int | None:
    """The line of `key`, or of its nearest ancestor that is in the file."""
    key = tuple(key)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return lines.get((), None)


def _walk(node: yaml.Node, key: Path_, lines: dict[Path_, int], problems: list[tuple]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            name = key_node.value
            if name in seen:
                problems.append((key + (name,), key_node.start_mark.line + 1,
                                 "duplicate key; each key may appear once"))
            seen.add(name)
            lines[key + (name,)] = key_node.start_mark.line + 1
            _walk(value_node, key + (name,), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[key + (index,)] = item.start_mark.line + 1
            _walk(item, key + (index,), lines, problems)


def read_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Reads a YAML file safely, returning its data and the line of every key."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError([Problem(file, None, "", "file not found",
                                   hint="Check the path, or run `mtl validate` on an existing recipe.")])
    except OSError as error:
        raise RecipeError([Problem(file, None, "", f"cannot read the file: {error.strerror}")])
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError([Problem(file, None, "", f"the recipe is {len(raw):,} bytes; recipes "
                                   f"are limited to {MAX_RECIPE_BYTES:,}",
                                   hint="Put data in a data file and point data.path at it.")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise RecipeError([Problem(file, line, "", "the file is not valid UTF-8 text",
                                   hint="Save the recipe as UTF-8.")])
    try:
        node = yaml.compose(text, Loader=RecipeLoader)
        data = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        what = getattr(error, "problem", None) or str(error)
        hint = "YAML indents with spaces, not tabs." if "character '\\t'" in str(error) else \
            "Check the indentation and the quoting near this line."
        if isinstance(error, yaml.constructor.ConstructorError) and "tag" in str(what):
            what = f"{what.strip()}; a recipe holds plain data, and tags that build objects are refused"
            hint = "Remove the '!!' tag."
        raise RecipeError([Problem(file, mark.line + 1 if mark else None, "",
                                   f"invalid YAML: {what}", hint=hint)])
    lines: dict[Path_, int] = {}
    duplicates: list[tuple] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines, duplicates)
    if duplicates:
        raise RecipeError([Problem(file, line, dotted(key), message) for key, line, message in duplicates])
    return data, lines


def apply_override(data: dict, text: str) -> Path_:
    """Applies one `dotted.key=value` override in place; the value is read as YAML."""
    if "=" not in text:
        raise RecipeError([Problem(OVERRIDE, None, "", "an override is written key=value",
                                   received(text), "Example: --set training.epochs=5")])
    key_text, value_text = text.split("=", 1)
    key = tuple(part for part in key_text.strip().split("."))
    if not all(key):
        raise RecipeError([Problem(OVERRIDE, None, key_text, "empty part in the dotted key",
                                   received(text))])
    try:
        value = yaml.load(value_text, Loader=RecipeLoader) if value_text.strip() else None
    except yaml.YAMLError:
        value = value_text
    key = tuple(int(part) if part.isdigit() else part for part in key)
    target: Any = data
    for i, part in enumerate(key):
        last = i == len(key) - 1
        if isinstance(target, list):
            if not isinstance(part, int) or part >= len(target):
                raise RecipeError([Problem(OVERRIDE, None, dotted(key[: i + 1]),
                                           f"no item {part} in a list of {len(target)}",
                                           received(text))])
        elif isinstance(target, dict):
            if not last and not isinstance(target.get(part), (dict, list)):
                if target.get(part) is not None:
                    raise RecipeError([Problem(OVERRIDE, None, dotted(key[: i + 1]),
                                               "cannot set a key inside a value that is not a "
                                               "mapping", received(target[part]))])
                target[part] = {}
        if last:
            target[part] = value
        else:
            target = target[part]
    return key


def _clean_location(loc: tuple, data: Any) -> Path_:
    """Drops pydantic's union-branch names (e.g. 'str', 'list[str]') from an error location."""
    key: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            key.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in (node.get("type"), node.get("name")):
            continue  # pydantic names the branch of a tagged union by its tag value
        elif isinstance(node, dict) or isinstance(node, list):
            # a key that is absent (missing / extra) is still the last part of the path
            if not isinstance(part, str) or not re.match(r"^[a-z-]+\[|^(str|int|float|bool|list|dict|function-)", part):
                key.append(part)
            break
        else:
            break
    return tuple(key)


def _model_at(key: Path_, data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `key`, for key suggestions."""
    from mtl_runner.models.trunks import TRUNKS
    from mtl_runner.recipe.schema import ModelConfig, TaskConfig
    from mtl_runner.weighting import WEIGHTINGS

    tagged = {(ModelConfig, "trunk"): (TRUNKS, "type", "shared_bottom"),
              (Recipe, "weighting"): (WEIGHTINGS, "name", "static")}
    model: Any = Recipe
    node: Any = data
    i = 0
    while i < len(key):
        part = key[i]
        node = node.get(part) if isinstance(node, dict) else None
        if model is Recipe and part == "tasks":
            if i + 1 == len(key):
                return None
            node = node.get(key[i + 1]) if isinstance(node, dict) else None
            model, i = TaskConfig, i + 2
            continue
        if part not in model.model_fields:
            return None
        if (model, part) in tagged:
            registry, tag, default = tagged[(model, part)]
            name = node.get(tag, default) if isinstance(node, dict) else default
            model = registry.get(name).Config if name in registry else None
        else:
            model = _unwrap_model(model.model_fields[part].annotation)
        if model is None:
            return None
        i += 1
    return model


def _unwrap_model(annotation: Any) -> Any:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def problems_from_validation(error: ValidationError, data: Any, file: str,
                             lines: dict[Path_, int], overridden: set[Path_]) -> list[Problem]:
    """Turns pydantic's errors into located, readable problems, one per key."""
    problems: list[Problem] = []
    seen: set[Path_] = set()
    for item in error.errors():
        key = _clean_location(item["loc"], data)
        if key in seen:
            continue
        seen.add(key)
        kind, ctx, value = item["type"], item.get("ctx", {}), item.get("input")
        hint = ""
        shown: str | None = received(value) if not isinstance(value, (dict, list)) else None
        if kind == "extra_forbidden":
            message = "unknown key"
            parent = _model_at(key[:-1], data)
            allowed = list(parent.model_fields) if parent else []
            hint = did_you_mean(key[-1], allowed) or (
                f"Allowed keys: {', '.join(allowed)}." if allowed else "")
            shown = None
        elif kind == "missing":
            message = "required key is missing"
            shown = None
        elif kind in ("literal_error", "union_tag_invalid", "enum"):
            if kind == "union_tag_invalid":  # the tag key itself: model.trunk.type
                key = key + (str(ctx.get("discriminator", "")).strip("'"),)
            expected = ctx.get("expected_tags") or ctx.get("expected") or ""
            choices = re.findall(r"'([^']*)'", str(expected))
            value = ctx.get("tag", value)
            message = "unknown value"
            shown = received(value)
            hint = did_you_mean(value, choices) or (f"Choose one of: {', '.join(choices)}."
                                                    if choices else "")
        elif kind == "dict_type" and not key:
            message = "a recipe is a mapping of keys (name, data, tasks, ...)"
            shown = type(value).__name__
        else:
            message = item["msg"]
            message = message[0].lower() + message[1:] if message else kind
            if message.startswith("value error, "):
                message = message[len("value error, "):]
        from_override = any(key[: len(o)] == o or o[: len(key)] == key for o in overridden) and key
        where_file, where_line = (OVERRIDE, None) if from_override else (file, line_of(lines, key))
        problems.append(Problem(where_file, where_line, dotted(key), message, shown, hint))
    return problems


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                check_data: bool = True) -> LoadedRecipe:
    """Loads, validates and checks a recipe.

    Args:
        path: the recipe file.
        overrides: `dotted.key=value` strings applied over the file (`--set`).
        check_data: also run the checks that read the data (label columns exist, ...).

    Returns:
        The validated recipe with its line map.

    Raises:
        RecipeError: with every problem found, each located by file, line and key.
    """
    path = Path(path)
    data, lines = read_yaml(path)
    file = str(path)
    if data is None:
        raise RecipeError([Problem(file, None, "", "the recipe is empty",
                                   hint="Start from recipes/quickstart.yaml.")])
    if not isinstance(data, dict):
        raise RecipeError([Problem(file, line_of(lines, ()), "", "a recipe is a mapping of keys "
                                   "(name, data, tasks, ...)", type(data).__name__,
                                   "Start from recipes/quickstart.yaml.")])
    return validate_recipe(data, path, lines, overrides, check_data)


def validate_recipe(data: dict, path: Path, lines: dict[Path_, int] | None = None,
                    overrides: list[str] | tuple[str, ...] = (), check_data: bool = True) -> LoadedRecipe:
    """Validates and checks recipe data that did not come from a file as written (the
    recipe `mtl finetune` builds from its flags), or did (`load_recipe`).

    Args:
        data: the recipe as a mapping; overrides are applied to it in place.
        path: where it came from: errors name it, and data paths are relative to its folder.
        lines: the line of each key, when there is a file.
        overrides: `dotted.key=value` strings.
        check_data: also run the checks that read the data.
    """
    lines = lines or {}
    file = str(path)
    overridden = {apply_override(data, text) for text in overrides}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(problems_from_validation(error, data, file, lines, overridden)) from None
    loaded = LoadedRecipe(recipe, path, lines, list(overrides))
    from mtl_runner.recipe.checks import run_checks

    problems = run_checks(loaded, check_data=check_data)
    if problems:
        raise RecipeError(problems)
    return loaded
