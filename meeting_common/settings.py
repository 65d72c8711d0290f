"""Settings declared once, as typed pydantic-settings fields, read from flags over
environment over defaults, with every invalid value reported at once.

A setting is one field of a tier's `TierSettings` subclass: its type and constraints, its
default, and its help (`description`). Its environment variable is the tier's prefix plus
the field name in capitals, its flag the field name with dashes. Secrets are `SecretStr`
fields: their values never reach `--help`, reprs or logs, and their help adds that the
variable is the way to give them (a flag shows in every process listing). Every value,
list-like ones too, arrives as text and is parsed by its type's validator (`from_text`,
`HostPort`): nothing is decoded as JSON on the way in.

Everything else is derived from the fields: the `--help` text (pydantic-settings builds
the parser), the README tables and the chart's checks (`TierSettings.options`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self

from pydantic import BeforeValidator, Field, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars


class SettingsError(ValueError):
    """One or more settings are invalid; `problems` lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))
        self.problems = list(problems)


# -- value types shared by both tiers -------------------------------------------------


class Address(NamedTuple):
    """A listen address: host (IPv6 without brackets) and port (0: any free port)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: Any) -> Any:
    """Parses `host:port` (IPv6 hosts in brackets); other values pass to the type check."""
    if not isinstance(text, str):
        return text
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return Address(host.strip("[]"), port)


def parse_bool(text: Any) -> Any:
    """Parses the usual spellings of a boolean (empty is false)."""
    if not isinstance(text, str):
        return text
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def from_text(parse: Callable[[str], Any]) -> BeforeValidator:
    """Validates a setting given as text with `parse`; typed values (defaults) pass as they are."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


HostPort = Annotated[Address, BeforeValidator(parse_address)]
"""`host:port`, as a flag or variable."""
Flag = Annotated[bool, BeforeValidator(parse_bool)]
"""true/false, yes/no, on/off, 1/0."""
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A finite duration > 0."""
Pause = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A finite duration >= 0."""
Count = Annotated[int, Field(gt=0)]
"""A whole number > 0."""


# -- the base of both tiers' settings --------------------------------------------------


class TierSettings(BaseSettings):
    """The settings every tier has: its logs and its graceful shutdown."""

    model_config = SettingsConfigDict(
        frozen=True,
        validate_default=True,
        extra="forbid",
        case_sensitive=False,
        cli_kebab_case=True,
        enable_decoding=False,
    )
    PROG: ClassVar[str] = ""
    """`--help` usage line: how the tier is started."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_format: Literal["text", "json"] = Field("text", description="log format")
    shutdown_grace_seconds: Seconds = Field(
        5,
        description="on SIGTERM, how long in-flight calls, streams and sockets get to finish",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load` reads the flags and the environment itself so that it knows where each
        # value came from; constructing with no arguments gives the defaults.
        return (init_settings,)

    def problems(self) -> list[str]:
        """Checks across settings (each problem one line); none by default."""
        return []

    @classmethod
    def load(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from flags (`argv`, else the process's), then the tier's variables
        (`environ`, else the process's), then defaults; raises SettingsError listing every
        invalid value (with where it came from) and every cross-setting problem."""
        args = list(sys.argv[1:] if argv is None else argv)
        from_env = _Environment(cls, os.environ if environ is None else environ)()
        from_flags = _cli(cls)(args=args)()
        values = {**from_env, **from_flags}
        try:
            settings = cls(**values)
        except ValidationError as exc:
            raise SettingsError(_problems(cls, exc, from_flags, from_env)) from None
        problems = settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        """Every setting of the tier as a flag and a variable, in declaration order (for
        `--help`, the README tables and the chart's tests)."""
        return tuple(
            Option(
                name=name,
                env=env_name(cls, name),
                default="" if field.annotation is SecretStr else shown_default(field),
                help=_help(field),
                secret=field.annotation is SecretStr,
                field=field,
            )
            for name, field in cls.model_fields.items()
        )


class _Environment(EnvSettingsSource):
    """The environment source, over a given mapping instead of the process's."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _problems(
    cls: type[TierSettings], exc: ValidationError, flags: Mapping[str, Any], env: Mapping[str, Any]
) -> list[str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "settings"
        if name in problems:
            continue  # one line per setting: the first reason is enough to fix it
        if name in flags:
            source = "--" + name.replace("_", "-")
        elif name in env:
            source = env_name(cls, name)
        else:
            source = "default"
        message = str(error["msg"]).removeprefix("Value error, ")
        field = cls.model_fields.get(name)
        if isinstance(error["input"], str) and field is not None and field.annotation is not SecretStr:
            message += f" (got {error['input']!r})"
        problems[name] = f"{name} (from {source}): {message}"
    return list(problems.values())


# -- what --help, the README and the chart tests show -----------------------------------


def env_name(cls: type[TierSettings], name: str) -> str:
    """The environment variable of a field."""
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def shown_default(field: FieldInfo) -> str:
    """A field's default as one would type it."""
    value = field.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and not isinstance(value, Address):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Option:
    """How one field shows as a flag and a variable (derived from the field, never declared)."""

    name: str
    """Field name (the flag, with dashes)."""
    env: str
    """Environment variable."""
    default: str
    """Default as text; parses back to the default."""
    help: str
    """What the setting does."""
    secret: bool
    """A SecretStr: its value is never shown."""
    field: FieldInfo
    """The declaration."""

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.field.rebuild_annotation())

    def parse(self, text: str) -> Any:
        """Validates a text value as this field does (raises ValidationError, a ValueError)."""
        return self._adapter.validate_python(text)


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    return f"{text}; {_SECRET_HELP}" if field.annotation is SecretStr else text


_SECRET_HELP = "prefer the variable"
"""What every secret's help ends with: a flag's value shows in every process listing."""


def _cli(cls: type[TierSettings]) -> CliSettingsSource[Any]:
    """pydantic-settings' flag parser, with each flag's variable and default in its help."""
    by_flag = {option.name: option for option in cls.options()}

    def add_argument(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> Any:
        option = by_flag.get(kwargs.get("dest", ""))
        if option is not None:
            shown = "(secret)" if option.secret else (option.default or "(empty)")
            kwargs["metavar"] = option.env
            kwargs["help"] = f"{option.help} [env {option.env}, default: {shown}]"
            kwargs.pop("action", None)  # one value per flag, as the variable holds one
        return parser.add_argument(*names, **kwargs)

    return CliSettingsSource(
        cls,
        cli_prog_name=cls.PROG,
        cli_kebab_case=True,
        cli_avoid_json=True,
        add_argument_method=add_argument,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
