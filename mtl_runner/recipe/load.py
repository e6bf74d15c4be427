"""Reading a recipe: safe YAML with the line of every key, `--set` overrides, validation.

`load_recipe` reports every problem at once, before anything is built, as a `RecipeError`
whose lines read `FILE:LINE: dotted.key: what is wrong. Received: X. Did you mean 'Y'?`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mtl_runner.errors import Problem, RecipeError, did_you_mean, received
from mtl_runner.reading import FileRefused, read_bytes_limited
from mtl_runner.recipe.schema import Recipe

MAX_RECIPE_BYTES = 1_000_000
OVERRIDE = "--set"

Path_ = tuple  # a key path, such as ("tasks", "sex", "type")


MAX_YAML_DEPTH = 64  # nesting of mappings and lists; a recipe needs about 6
MAX_YAML_NODES = 100_000  # values, keys and items once every alias is expanded
MAX_OVERRIDE_PARTS = 32  # parts of a `--set` dotted key


class YamlLimit(Exception):
    """YAML that is refused before it is built: too deep, too large once aliases expand, or
    an alias that contains itself."""

    def __init__(self, message: str, line: int | None, hint: str):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


class RecipeLoader(yaml.SafeLoader):
    """The safe loader, reading `1e-3` as a float as YAML 1.2 does (1.1 wants `1.0e-3`), and
    refusing nesting deeper than `MAX_YAML_DEPTH` while it composes (PyYAML composes by
    recursion, so 5,000 brackets would end in a RecursionError)."""

    depth = 0
    composed = 0

    def compose_node(self, parent, index):
        self.depth += 1
        self.composed += 1
        try:
            if self.composed > MAX_YAML_NODES:
                raise YamlLimit(f"the YAML holds more than {MAX_YAML_NODES:,} values",
                                self.peek_event().start_mark.line + 1,
                                "Put data in a data file and point data.path at it.")
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimit(f"the YAML nests more than {MAX_YAML_DEPTH} levels deep",
                                mark.line + 1, "A recipe nests a few levels; check the brackets.")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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
        frames: one table per data source (`recipe.data_groups()`).
        warnings: what loading guessed or changed (counted lines), recorded in run.json.
    """

    recipe: Recipe
    path: Path
    lines: dict[Path_, int]
    overrides: list[str]
    frame: Any = dataclasses.field(default=None, repr=False)  # the data table, once read
    frames: Any = dataclasses.field(default=None, repr=False)  # one per recipe.data_groups()
    warnings: list = dataclasses.field(default_factory=list)  # printed at load, kept in run.json

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


def _check_expansion(root: yaml.Node) -> None:
    """Refuses a node graph that aliases make huge (a "billion laughs"), deep, or cyclic.

    Aliases share nodes, so the graph is small even when the data it stands for is not;
    every later step (the line map, validation, the resolved recipe written to the run) walks
    the expanded data. Sizes and heights are memoized per node, and the walk stops as soon as
    a limit is passed, so this costs at most the size of the file.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is None:
            if id(node) in open_nodes:
                raise YamlLimit("an alias refers to a node that contains it (a recursive alias)",
                                node.start_mark.line + 1, "Remove the alias, or copy the value.")
            if depth > MAX_YAML_DEPTH:
                raise YamlLimit(f"once aliases are expanded, the YAML nests more than "
                                f"{MAX_YAML_DEPTH} levels deep", node.start_mark.line + 1,
                                "Use fewer nested aliases.")
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            open_nodes.add(id(node))
            total, height = 1, 1
            for child in children:
                size, child_height = measure(child, depth + 1)
                total, height = total + size, max(height, child_height + 1)
                if total > MAX_YAML_NODES:
                    break
            open_nodes.discard(id(node))
            known = sizes[id(node)] = (total, height)
        if known[0] > MAX_YAML_NODES:
            raise YamlLimit(f"once aliases are expanded, the YAML holds more than "
                            f"{MAX_YAML_NODES:,} values", node.start_mark.line + 1,
                            "Use fewer aliases (*name), or write the values out.")
        if depth + known[1] - 1 > MAX_YAML_DEPTH:
            raise YamlLimit(f"once aliases are expanded, the YAML nests more than "
                            f"{MAX_YAML_DEPTH} levels deep", node.start_mark.line + 1,
                            "Use fewer nested aliases.")
        return known

    measure(root, 1)


def parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """Composes YAML text within the limits, then builds its data with the safe constructor.

    Raises:
        yaml.YAMLError: the text is not valid YAML.
        YamlLimit: too deep, too large once aliases are expanded, or a recursive alias.
    """
    loader = RecipeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_expansion(node)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Reads a YAML file safely, returning its data and the line of every key.

    Only a regular file of at most `MAX_RECIPE_BYTES` is read (never a FIFO, a device or a
    folder), and its YAML is bounded in depth and in size once aliases are expanded.
    """
    file = str(path)
    try:
        raw = read_bytes_limited(path, MAX_RECIPE_BYTES, "recipe")
    except FileRefused as error:
        if error.missing:
            raise RecipeError([Problem(file, None, "", "file not found", hint="Check the path, "
                                       "or run `mtl validate` on an existing recipe.")]) from None
        raise RecipeError([Problem(file, None, "", error.message, hint=error.hint)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise RecipeError([Problem(file, line, "", "the file is not valid UTF-8 text",
                                   hint="Save the recipe as UTF-8.")])
    try:
        node, data = parse_yaml(text)
    except YamlLimit as error:
        raise RecipeError([Problem(file, error.line, "", error.message, hint=error.hint)]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        what = getattr(error, "problem", None) or str(error)
        hint = "YAML indents with spaces, not tabs." if "character '\\t'" in str(error) else \
            "Check the indentation and the quoting near this line."
        if isinstance(error, yaml.constructor.ConstructorError) and "tag" in str(what):
            what = f"{what.strip()}; a recipe holds plain data, and tags that build objects are refused"
            hint = "Remove the '!!' tag."
        raise RecipeError([Problem(file, mark.line + 1 if mark else None, "",
                                   f"invalid YAML: {what}", hint=hint)]) from None
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
    key, value = parse_override(text)
    target: Any = data
    for i, part in enumerate(key[:-1]):
        target = _step_into(target, key[: i + 1], text)
    _check_list_index(target, key, text)
    target[key[-1]] = value
    return key


def parse_override(text: str) -> tuple[Path_, Any]:
    """`dotted.key=value` as (key, value): digits in the key index lists, the value is YAML."""
    if "=" not in text:
        raise RecipeError([Problem(OVERRIDE, None, "", "an override is written key=value",
                                   received(text), "Example: --set training.epochs=5")])
    key_text, value_text = text.split("=", 1)
    key = tuple(part for part in key_text.strip().split("."))
    if not all(key):
        raise RecipeError([Problem(OVERRIDE, None, key_text, "empty part in the dotted key",
                                   received(text))])
    if len(key) > MAX_OVERRIDE_PARTS:
        raise RecipeError([Problem(OVERRIDE, None, received(key_text.strip()), f"a dotted key has "
                                   f"at most {MAX_OVERRIDE_PARTS} parts", str(len(key)))])
    try:
        value = parse_yaml(value_text)[1] if value_text.strip() else None
    except YamlLimit as error:
        raise RecipeError([Problem(OVERRIDE, None, dotted(key), error.message, None,
                                   error.hint)]) from None
    except yaml.YAMLError:
        value = value_text
    return tuple(int(part) if part.isdigit() else part for part in key), value


def _check_list_index(target: Any, key: Path_, text: str) -> None:
    """Refuses an index past the end of a list (or a name) where `key` reaches a list."""
    part = key[-1]
    if isinstance(target, list) and (not isinstance(part, int) or part >= len(target)):
        raise RecipeError([Problem(OVERRIDE, None, dotted(key),
                                   f"no item {part} in a list of {len(target)}", received(text))])


def _step_into(target: Any, key: Path_, text: str) -> Any:
    """The value at the last part of `key` inside `target`, made an empty mapping when it is
    absent or null, for an override to set a key below it."""
    _check_list_index(target, key, text)
    part = key[-1]
    if isinstance(target, dict) and not isinstance(target.get(part), (dict, list)):
        if target.get(part) is not None:
            raise RecipeError([Problem(OVERRIDE, None, dotted(key), "cannot set a key inside a "
                                       "value that is not a mapping", received(target[part]))])
        target[part] = {}
    return target[part]


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
        key, message, shown, hint = _explain(item, key, data)
        problems.append(Problem(*_where(key, file, lines, overridden), dotted(key), message,
                                shown, hint))
    return problems


def _explain(item: dict, key: Path_, data: Any) -> tuple[Path_, str, str | None, str]:
    """One pydantic error as (key, message, received, hint) in the recipe's words."""
    kind, ctx, value = item["type"], item.get("ctx", {}), item.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(key[:-1], data)
        allowed = list(parent.model_fields) if parent else []
        return key, "unknown key", None, did_you_mean(key[-1], allowed) or (
            f"Allowed keys: {', '.join(allowed)}." if allowed else "")
    if kind == "missing":
        return key, "required key is missing", None, ""
    if kind in ("literal_error", "union_tag_invalid", "enum"):
        return _explain_choice(kind, ctx, value, key)
    shown = received(value) if not isinstance(value, (dict, list)) else None
    if isinstance(value, bool) and re.match(r"(greater|less)_than|multiple_of|int_|float_|"
                                            r"finite_number", kind):
        # not "should be greater than 0"
        return key, "a number is expected, not a boolean", str(value).lower(), ""
    if kind == "dict_type" and not key:
        return key, "a recipe is a mapping of keys (name, data, tasks, ...)", \
            type(value).__name__, ""
    message = item["msg"]
    message = message[0].lower() + message[1:] if message else kind
    return key, message.removeprefix("value error, "), shown, ""


def _where(key: Path_, file: str, lines: dict[Path_, int], overridden: set[Path_]) -> tuple:
    """(file, line) to blame for `key`: `--set` when an override set it or a key above it."""
    if key and any(key[: len(o)] == o or o[: len(key)] == key for o in overridden):
        return OVERRIDE, None
    return file, line_of(lines, key)


def _explain_choice(kind: str, ctx: dict, value: Any, key: Path_
                    ) -> tuple[Path_, str, str | None, str]:
    """A value outside a fixed set of choices (a literal, an enum, a registry's tag)."""
    if kind == "union_tag_invalid":  # the tag key itself: model.trunk.type
        key = key + (str(ctx.get("discriminator", "")).strip("'"),)
    expected = ctx.get("expected_tags") or ctx.get("expected") or ""
    choices = re.findall(r"'([^']*)'", str(expected))
    value = ctx.get("tag", value)
    return key, "unknown value", received(value), did_you_mean(value, choices) or (
        f"Choose one of: {', '.join(choices)}." if choices else "")


def suspect_values(value: Any, raw: Any, key: Path_ = ()) -> list[tuple[Path_, str, str]]:
    """Values pydantic accepted that would mean something else than written: a boolean read
    as a number (`epochs: true` is not 1 epoch) and Inf or NaN where a number is expected.

    Walks the validated model beside the data it came from, so it covers every field of every
    registered trunk and strategy without naming them.

    Returns:
        (key, message, received) for each such value.
    """
    children = _children(value, raw)
    if children is not None:
        return [found for part, item, raw_item in children
                for found in suspect_values(item, raw_item, key + (part,))]
    if isinstance(raw, bool) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(key, "a number is expected, not a boolean", str(raw).lower())]
    if isinstance(value, float) and not math.isfinite(value):
        return [(key, "a finite number is expected", received(raw))]
    return []


def _children(value: Any, raw: Any) -> list[tuple[Any, Any, Any]] | None:
    """(part, validated, as written) for each field, key or item both sides hold; None when
    `value` is not a model, mapping or list beside a container of the same shape."""
    if isinstance(value, BaseModel):
        names = type(value).model_fields if isinstance(raw, dict) else ()
        return [(name, getattr(value, name), raw[name]) for name in names if name in raw]
    if isinstance(value, dict) and isinstance(raw, dict):
        return [(name, item, raw[name]) for name, item in value.items() if name in raw]
    if isinstance(value, (list, tuple)) and isinstance(raw, (list, tuple)) \
            and len(value) == len(raw):
        return [(index, item, raw_item) for index, (item, raw_item) in enumerate(zip(value, raw))]
    return None


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
    suspect = suspect_values(recipe, data)
    if suspect:
        raise RecipeError([Problem(*_where(key, file, lines, overridden), dotted(key), message,
                                   shown) for key, message, shown in suspect])
    loaded = LoadedRecipe(recipe, path, lines, list(overrides))
    from mtl_runner.recipe.checks import run_checks

    problems = run_checks(loaded, check_data=check_data)
    if problems:
        raise RecipeError(problems)
    return loaded
