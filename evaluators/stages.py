"""Wall-clock accounting of a trial's stages."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator


class StageClock:
    """Accumulates seconds per named stage; ``on_stage`` hears each stage as it starts.

    Invariant: ``seconds[name]`` is the sum of the wall-clock of every ``with clock(name)`` block.
    """

    def __init__(self, on_stage: Callable[[str], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._on_stage = on_stage

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._on_stage:
            self._on_stage(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        """Sum over stages."""
        return sum(self.seconds.values())
