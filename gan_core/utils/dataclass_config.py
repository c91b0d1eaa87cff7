"""Build configuration dataclasses from plain dicts (YAML/JSON), strictly.

Every model, trainer and downstream system keeps its settings in a dataclass whose
defaults are the thesis values. The workflow passes overrides as a JSON object;
``from_dict`` applies them and rejects unknown keys with an error naming the key.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Mapping, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``data``; unknown keys raise ConfigError."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in {where or cls.__name__}; allowed: {sorted(names)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        tp = hints.get(key)
        kwargs[key] = _coerce(tp, value, f"{where or cls.__name__}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (possibly nested) dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=list))
