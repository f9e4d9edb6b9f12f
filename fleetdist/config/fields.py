"""Small strict readers for YAML mappings, so every error names `file: path.to.field`.

The loader reads plain data (from `yaml.safe_load`) through `Fields`, which
remembers where it is and which keys it has consumed; `done()` then rejects
whatever is left, so a misspelt key never passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fleetdist.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys, so a pasted block would
    silently override what the reader sees first.  Keys brought in by a `<<`
    merge may still be overridden: that is what a merge is for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a UTF-8 YAML file safely; any problem names the file and line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{where}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: malformed YAML: {problem}") from None


class Fields:
    """A mapping being validated: typed getters that name the field on error."""

    def __init__(self, data: Any, source: str, path: str = "") -> None:
        self.source, self.path = source, path
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise self.error("", f"expected a mapping, got {_kind(data)}")
        self.data: dict[Any, Any] = data
        self._used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError.at(self.source, self.field(key) if key else self.path, reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self.data.get(key)

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "missing required field")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected a string, got {_kind(value)}")
        text = str(value)
        if required and not text.strip():
            raise self.error(key, "must not be empty")
        return text

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_kind(value)}")
        if value <= minimum:
            raise self.error(key, f"must be greater than {minimum:g}")
        return float(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_kind(value)}")
        return value

    def integer(self, key: str, default: int | None, *, low: int, high: int) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings; a single string counts as a list of one."""
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{i}]", f"expected a non-empty string, got {_kind(item)}")
        return tuple(value)

    def scalars(self, key: str) -> dict[str, str]:
        """A mapping of names to scalar values, all turned into strings."""
        sub = self.sub(key)
        out: dict[str, str] = {}
        for name, value in sub.data.items():
            sub._used.add(str(name))
            if not isinstance(name, str):
                raise sub.error(str(name), "keys must be strings")
            if isinstance(value, dict | list) or value is None:
                raise sub.error(name, f"expected a scalar value, got {_kind(value)}")
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    def sub(self, key: str) -> Fields:
        return Fields(self.raw(key), self.source, self.field(key))

    def done(self) -> None:
        """Reject keys nobody asked for."""
        for key in self.data:
            if str(key) not in self._used:
                raise self.error(str(key), "unknown key")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
