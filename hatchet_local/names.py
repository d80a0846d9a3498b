"""The naming convention for tenants and namespaces, and names made to follow it.

Hatchet's slug rule (letters, digits, `.`, `-`, `_`) narrowed to one convention, lowercase
words joined by `-`, so that a name reads the same in the config file, in a slug, in an env
file's name and in `HATCHET_CLIENT_NAMESPACE`.
"""

from __future__ import annotations

import getpass
import re

from hatchet_local.errors import ConfigError

NAME_PATTERN = re.compile("[a-z0-9]+(?:-[a-z0-9]+)*")
NAME_RULE = "lowercase letters and digits in words joined by '-', at most 63 characters"


def valid_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(NAME_PATTERN.fullmatch(value))


def check_name(name: str, what: str) -> str:
    """`name`, or ConfigError naming `what` and the rule."""
    if not valid_name(name):
        raise ConfigError(f"{what} {name!r}: expected {NAME_RULE}")
    return name


def default_namespace(user: str | None = None) -> str:
    """`dev-<login name>`, made to follow the naming convention."""
    login = user if user is not None else getpass.getuser()
    slug = re.sub("[^a-z0-9]+", "-", login.lower()).strip("-")[:59].strip("-")
    if not slug:
        raise ConfigError(f"--namespace auto: cannot make a name from user {login!r}; name it")
    return f"dev-{slug}"
