"""One small registry type for every extension point: spaces, backbones, quantization schemes and
latency backends (timm's "register by decorator, fail fast on unknown names").

Pure Python, so the light packages use it without loading anything heavy. A registry maps a name
to an entry (a function, a class, a spec) plus optional metadata; registering a name twice is an
error, and looking up an unknown name raises :class:`UnknownNameError` listing the known names.

Plugins: modules named in the environment variable ``HWSEARCH_PLUGINS`` (comma-separated) and
entry points of the group ``hwsearch.plugins`` are imported by :func:`load_plugins`, so a
space, backbone or latency backend defined in a user's own file registers itself before the
command line offers its choices.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

ENV_PLUGINS = "HWSEARCH_PLUGINS"
ENTRY_POINT_GROUP = "hwsearch.plugins"


class UnknownNameError(KeyError, ValueError):
    """A name that no entry of a registry has; the message lists the known names.

    It is both a ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad argument value), so
    callers written against either keep working.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> entry mapping of one kind of extension.

    Invariants: names are unique; :meth:`names` is sorted; :meth:`get` never returns ``None`` for
    an unknown name (it raises).

    Args:
        kind: What the entries are, for messages (``"space"``, ``"backbone"``).
        error: The exception type raised for unknown names (a subclass of
            :class:`UnknownNameError`).
    """

    def __init__(self, kind: str, error: type[UnknownNameError] = UnknownNameError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it.

        Raises:
            ValueError: ``name`` is empty or already registered.
        """
        if not name:
            raise ValueError(f"a {self.kind} needs a non-empty name")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def remove(self, name: str) -> None:
        """Forget ``name`` (for tests that register throwaway entries); unknown names are ignored."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            UnknownNameError: (the registry's ``error`` type) listing the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise self.error(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def load_plugins(extra: str | None = None) -> list[str]:
    """Import the plugin modules (``HWSEARCH_PLUGINS``, ``extra``, entry points); returns their names.

    Args:
        extra: More comma-separated module names (e.g. what a Ray driver sends its workers).

    Raises:
        ImportError: A named module cannot be imported (the message names it).
    """
    names = [n.strip() for n in f"{os.environ.get(ENV_PLUGINS, '')},{extra or ''}".split(",") if n.strip()]
    loaded = []
    for name in dict.fromkeys(names):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"cannot import hwsearch plugin module {name!r} ({ENV_PLUGINS}): {exc}") from exc
        loaded.append(name)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        point.load()
        loaded.append(point.value)
    return loaded
