"""Reading `hatchet-local.yaml`: safe YAML, keys given twice refused, one line per problem.

What the settings mean is config.py's business; this module only turns a file into a
mapping or a ConfigError that names the file and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hatchet_local.errors import ConfigError, brief


def read_config_file(path: Path, fix: str) -> Mapping[object, object] | None:
    """The settings mapping in the file at `path`. None when the file is absent and `fix`
    is empty (the optional default file); otherwise its absence is an error ending in `fix`."""
    text = _config_text(path, fix)
    if text is None:
        return None
    source = str(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).partition("\n")[0]
        raise ConfigError(f"{source}: {where}invalid YAML ({problem}); fix the syntax") from None
    except RecursionError:  # `a: [[[[...]]]]` a few thousand levels deep
        raise ConfigError(
            f"{source}: values nested too deeply to be settings; fix the file"
        ) from None
    if data is None:  # empty, or only comments
        return {}
    if not isinstance(data, dict):
        expected = "a mapping of settings ('key: value' lines)"
        raise ConfigError(f"{source}: expected {expected}, got {brief(data)}")
    return data


def _config_text(path: Path, fix: str) -> str | None:
    """The config file's text; None when it is absent and optional (no `fix` to give)."""
    source = str(path)
    if path.is_dir():
        fix = fix or "move it away or pass --config"
        raise ConfigError(f"{source}: is a directory, expected a YAML config file; {fix}")
    if path.is_symlink() and not path.exists():
        raise ConfigError(
            f"{source}: a symlink to {path.readlink()}, which does not exist; "
            f"fix the link or remove it"
        )
    if path.exists() and not path.is_file():  # a FIFO would block the read forever
        raise ConfigError(f"{source}: not a regular file, expected a YAML config file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    except FileNotFoundError:
        if not fix:
            return None
        raise ConfigError(f"{source}: config file not found; {fix}") from None
    except OSError as exc:  # PermissionError, mostly
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(
            f"{source}: cannot read the config file ({reason}); check its permissions"
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (which would silently
    drop the first value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)
