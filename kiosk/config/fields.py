"""Checking one section's table against its dataclass: types, limits, unknown keys.

A field's type and default are the schema; extra limits sit in its metadata:
``choices``, ``min``, ``max``, ``pattern`` (each applied to every item of a list),
``key`` (the TOML key when it differs from the attribute name), ``one_or_list``
(a single value is taken as a list of one), ``unique`` (a list without repeats)
and ``min_items``/``max_items``. A :class:`~enum.StrEnum` field takes one of its
members' values and holds the member.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from dataclasses import field
from typing import Any


def setting(default: Any = dataclasses.MISSING, *, repr: bool = True, **meta: Any) -> Any:
    """A dataclass field with its limits in the metadata (see the module docstring)."""
    if default is dataclasses.MISSING:
        return field(metadata=meta, repr=repr)
    return field(default=default, metadata=meta, repr=repr)


def toml_key(f: dataclasses.Field[Any]) -> str:
    """The key a field has in the TOML file."""
    return str(f.metadata.get("key", f.name))


def toml_keys(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """A section's fields by their TOML key."""
    return {toml_key(f): f for f in dataclasses.fields(cls)}


def check_section(cls: type, table: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """The constructor arguments for *cls* from *table*, and every problem found."""
    hints = typing.get_type_hints(cls)
    fields = toml_keys(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key in table:
        if key not in fields:
            problems.append(f"{name}.{key}: unknown key{hint(key, fields)}")
    for key, f in fields.items():
        where = f"{name}.{key}"
        if key not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{where}: missing (required)")
            continue
        value, problem = check_value(table[key], hints[f.name], f.metadata)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            values[f.name] = value
    return values, problems


def check_value(value: Any, kind: Any, meta: Any) -> tuple[Any, str]:
    """*value* converted to *kind* and checked against *meta*, or a problem."""
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        return _check_list(value, typing.get_args(kind)[0], meta)
    if origin is types.UnionType:
        kind = typing.get_args(kind)[0]
    if kind is bool:
        if not isinstance(value, bool):
            return None, "must be true or false"
    elif kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return None, f"must be a whole number, got {shown(value)}"
    elif kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None, f"must be a number, got {shown(value)}"
        value = float(value)
    elif (kind is str or _is_enum(kind)) and not isinstance(value, str):
        return None, f"must be a string, got {shown(value)}"
    if "choices" in meta and value not in meta["choices"]:
        return None, f"must be one of {', '.join(map(str, meta['choices']))}; got {shown(value)}"
    if _is_enum(kind):
        try:
            value = kind(value)
        except ValueError:
            return None, f"must be one of {', '.join(map(str, kind))}; got {shown(value)}"
    if "min" in meta and value < meta["min"]:
        return None, f"must be at least {meta['min']}, got {value}"
    if "max" in meta and value > meta["max"]:
        return None, f"must be at most {meta['max']}, got {value}"
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        return None, f"has the wrong form: {shown(value)}"
    return value, ""


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.StrEnum)


def _check_list(value: Any, item: Any, meta: Any) -> tuple[Any, str]:
    if meta.get("one_or_list") and not isinstance(value, list):
        value = [value]
    if not isinstance(value, list):
        return None, "must be a list"
    checked = []
    for v in value:
        c, problem = check_value(v, item, meta)
        if problem:
            return None, f"list item {shown(v)}: {problem}"
        checked.append(c)
    if meta.get("unique"):
        plain = [v.value if isinstance(v, enum.Enum) else v for v in checked]
        repeated = sorted({repr(v) for v in plain if plain.count(v) > 1})
        if repeated:
            return None, f"lists {', '.join(repeated)} more than once"
    if "min_items" in meta and len(checked) < meta["min_items"]:
        return None, f"needs at least {meta['min_items']} item(s)"
    if "max_items" in meta and len(checked) > meta["max_items"]:
        return None, f"takes at most {meta['max_items']} items, got {len(checked)}"
    return tuple(checked), ""


def shown(value: Any) -> str:
    """*value* as a short repr for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def hint(key: str, known: Any) -> str:
    """A "did you mean" suffix naming the closest of *known*, or nothing."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
