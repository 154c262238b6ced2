"""Latency backends, in one registry: local (onnxruntime here), remote (the fleet), fake (tests only).

A backend is a class (or factory) taking one options object, registered with
:func:`register_latency_backend`; its options are a dataclass whose fields are the backend's
settings, so the launcher builds it from the command line and a Ray worker rebuilds it from the
same picklable options. Adding a backend is one file::

    @dataclass(frozen=True)
    class JetsonOptions:
        device_tag: str = "jetson"
        host: str = "jetson.local"

    @register_latency_backend("jetson", options=JetsonOptions, source="measured",
                              help="TensorRT on a Jetson over SSH")
    class JetsonBackend:
        name = "jetson"
        def __init__(self, options: JetsonOptions) -> None: ...
        def measure(self, artifact, input_shape, settings) -> LatencyResult: ...

This package stays light (numpy, httpx): the Raspberry Pi agent imports its benchmark loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from evaluators.contracts import LatencyBackend
from spaces.registries import Registry


@dataclass(frozen=True)
class BackendSpec:
    """A registered latency backend.

    Attributes:
        name: Registry name (``--latency NAME``).
        options: Dataclass of its settings (every field has a default or comes from the CLI).
        factory: ``factory(options) -> LatencyBackend``.
        source: What its figures are: ``measured``, ``emulated``, ``predicted`` or ``fake``.
        help: One line for ``--help``.
    """

    name: str
    options: type
    factory: Callable[[Any], LatencyBackend]
    source: str
    help: str


LATENCY_BACKENDS: Registry[BackendSpec] = Registry("latency backend")


def register_latency_backend(
    name: str, *, options: type, source: str = "measured", help: str = "",
) -> Callable[[Any], Any]:
    """Decorator registering a backend class (or factory) that takes an ``options`` instance.

    Raises:
        ValueError: ``name`` is already registered, or ``options`` is not a dataclass.
    """
    if not dataclasses.is_dataclass(options):
        raise ValueError(f"latency backend {name!r}: options must be a dataclass type")

    def decorate(factory: Any) -> Any:
        LATENCY_BACKENDS.add(name, BackendSpec(name, options, factory, source, help))
        return factory

    return decorate


def make_latency_backend(name: str, options: Any = None, **fields: Any) -> LatencyBackend:
    """Build the backend ``name`` from ``options`` (or from option ``fields``).

    Raises:
        UnknownNameError: For an unknown name, listing the known ones (also a ValueError).
        TypeError: ``fields`` that the backend's options do not have.
    """
    spec = LATENCY_BACKENDS.get(name)
    return spec.factory(options if options is not None else spec.options(**fields))


def backend_options(backend: LatencyBackend) -> Any:
    """The options a backend was built from (what rebuilds it elsewhere, e.g. in a Ray worker)."""
    return backend.options  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RemoteOptions:
    """Settings of the ``remote`` backend: the fleet coordinator and the device tag it measures on."""

    fleet_url: str
    token: str = dataclasses.field(repr=False)
    device_tag: str
    timeout_s: float = 600.0
    ca: str | None = None


@register_latency_backend("remote", options=RemoteOptions,
                          help="a fleet of device agents (e.g. Raspberry Pis) measures each artifact")
def _remote(options: RemoteOptions) -> LatencyBackend:
    from evaluators.latency.remote import RemoteLatencyBackend

    backend = RemoteLatencyBackend(**dataclasses.asdict(options))
    backend.options = options  # type: ignore[attr-defined]
    return backend


from evaluators.latency import fake as _fake, local as _local  # noqa: E402,F401  (register the built-ins)

__all__ = ["LATENCY_BACKENDS", "BackendSpec", "RemoteOptions", "backend_options", "make_latency_backend",
           "register_latency_backend"]
