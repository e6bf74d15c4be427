"""Errors a user can cause, shown as one line each and never as a traceback.

`RecipeError` and `UsageError` exit with code 2 (the input was wrong); `RunError` exits with
code 1 (something failed while a run was under way).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Iterable

import click


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Returns " Did you mean 'x'?" for the closest choice, or "" when none is close."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def received(value: Any, limit: int = 60) -> str:
    """A short, readable rendering of a received value for an error message."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


MAX_NAMES_SHOWN = 20  # column names listed in one message
MAX_NAME_CHARS = 40  # characters of one shown name


def shown_name(name: Any, width: int = MAX_NAME_CHARS) -> str:
    """A column name as a message shows it: quoted, control characters escaped, shortened."""
    text = repr(str(name))[1:-1]
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def names_can_be_shown(columns: Iterable[Any], rows: int) -> bool:
    """Whether a file's column names may appear in a message: only when it parsed as a table.

    A file that is not one (`/proc/self/environ`, a key file, a note) still parses as a
    one-column CSV whose "column name" is its first line; echoing it would print secrets.
    A table here has at least two columns and a data row, and names that are short, printable
    text.
    """
    names = list(columns)
    return (len(names) >= 2 and rows >= 1
            and all(isinstance(n, str) and n.isprintable() and 0 < len(n) <= 200 for n in names))


def column_list(columns: Iterable[Any], limit: int = MAX_NAMES_SHOWN) -> str:
    """At most `limit` column names, each shortened, for a hint: "'a', 'b', ... (30 in all)"."""
    names = list(columns)
    text = ", ".join(shown_name(n) for n in names[:limit])
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: where it is, what is wrong, and how to fix it.

    Rendered as `FILE:LINE: dotted.key: message. Received: X. hint`.
    """

    file: str
    line: int | None
    key: str
    message: str
    received: str | None = None
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        text = text if text.endswith(("?", "!")) else text.rstrip(".") + "."
        if self.received is not None:
            text += f" Received: {self.received}."
        if self.hint:
            text += " " + self.hint.strip()
        return text


class MtlError(click.ClickException):
    """Base class: a failure the user can understand, printed as `Error: ...` lines."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: D401 - click's signature
        for line in self.format_message().splitlines():
            click.echo(f"Error: {line}", err=True, file=file)


class UsageError(MtlError):
    """A wrong command-line argument or option (exit code 2)."""

    exit_code = 2


class RecipeError(MtlError):
    """One or more problems in a recipe, all reported at once (exit code 2)."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RunError(MtlError):
    """A failure during a run: bad data found late, an unreadable file, a full disk (exit 1)."""

    exit_code = 1
