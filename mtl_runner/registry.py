"""A small name → class registry with "did you mean" lookups.

Every pluggable piece (task type, trunk, weighting strategy, dataset) registers itself with
`@REGISTRY.register("name")`; `REGISTRY.get(name)` resolves it or raises `KeyError` with the
close matches, so a recipe typo gets a useful message.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from mtl_runner.errors import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects.

    Args:
        kind: what the entries are, used in error messages ("trunk", "task type").

    Example:
        >>> trunks = Registry("trunk")
        >>> @trunks.register("shared_bottom")
        ... class SharedBottom: ...
        >>> trunks.get("shared_bottom").__name__
        'SharedBottom'
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice.")
            self._entries[name] = obj
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._entries) or f" Choose one of: {', '.join(self.names())}."
        return f"unknown {self.kind} '{name}'.{hint}"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.names()]
