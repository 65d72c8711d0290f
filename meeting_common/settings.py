"""Declarative command-line and environment settings with validation at start.

Each tier lists its options once; `parse_options` builds an argparse parser whose
defaults come from the environment, so `--help` shows every flag, its variable and its
effective default, and every invalid value is reported at once rather than one by one.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """One or more settings are invalid; `problems` lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: a flag, its environment variable, a parser and a default."""

    name: str
    """Attribute name in the parsed result (and the flag, with dashes)."""
    env: str
    """Environment variable that overrides the default."""
    default: str
    """Default as text, parsed like any other value."""
    help: str
    """What the setting does."""
    parse: Callable[[str], Any] = str
    """Turns the text into a value; raises ValueError when it is invalid."""
    secret: bool = False
    """Never shown in --help defaults or logs."""


def parse_bool(text: str) -> bool:
    """Parses the usual spellings of a boolean."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_positive_float(text: str) -> float:
    """Parses a float > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(f"must be a finite number > 0: {text!r}")
    return value


def parse_non_negative_float(text: str) -> float:
    """Parses a finite float >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be a finite number >= 0: {text!r}")
    return value


def parse_positive_int(text: str) -> int:
    """Parses an int > 0."""
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0: {text!r}")
    return value


def parse_address(text: str) -> tuple[str, int]:
    """Parses `host:port` (IPv6 hosts in brackets); port 0 asks for a free port."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host.strip("[]"), port


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting only the given words."""

    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}; got {text!r}")
        return text

    return parse


def parse_options(
    options: Sequence[Option],
    argv: Sequence[str] | None,
    environ: Mapping[str, str] | None,
    *,
    prog: str,
    description: str,
) -> dict[str, Any]:
    """Parses flags over environment over defaults; raises SettingsError listing all problems."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for option in options:
        shown = "(secret)" if option.secret else option.default
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            dest=option.name,
            default=None,
            metavar=option.env,
            help=f"{option.help} [env {option.env}, default: {shown or '(empty)'}]",
        )
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for option in options:
        raw = getattr(namespace, option.name)
        source = "--" + option.name.replace("_", "-")
        if raw is None:
            raw = env.get(option.env)
            source = option.env
        if raw is None:
            raw = option.default
            source = "default"
        try:
            values[option.name] = option.parse(raw)
        except ValueError as exc:
            problems.append(f"{option.name} (from {source}): {exc}")
    if problems:
        raise SettingsError(problems)
    return values
