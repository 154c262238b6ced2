"""Warm starts: pretrained weights for a backbone and width, from local files or timm's hub.

``--pretrained PATH`` names a weights file or a folder of them. A file is matched to a backbone and
width by its name: the timm variant it was trained as (``mobilenetv3_small_075.pth``,
``lcnet_100.safetensors``, ``mobileone_s0.bin``; what :func:`evaluators.models.BackboneSpec.variant`
gives). timm loads it (``pretrained_cfg_overlay=dict(file=...)``) with strict shape checks; the
classifier is re-initialised for the task's classes. ``--pretrained imagenet`` uses timm's own
hub download (with its progress bar) for the variants timm publishes weights for; nothing is
ever downloaded otherwise, and offline it stops with one line naming ``--pretrained PATH``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evaluators.errors import HwsearchError

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
IMAGENET = "imagenet"
HUB_HOST = "huggingface.co"


class WarmStartError(HwsearchError):
    """Pretrained weights are missing, unreachable or do not fit the model."""


@dataclass(frozen=True)
class WarmStart:
    """Weights for one backbone at one width.

    Attributes:
        variant: The timm variant the weights belong to (``mobilenetv3_small_075``).
        file: Local weights file, or ``None`` for timm's hub (``--pretrained imagenet``).
    """

    variant: str
    file: str | None = None

    def build(self, factory: Callable[..., object], width: float, num_classes: int) -> object:
        """``factory(width, num_classes)`` with these weights loaded by timm.

        Raises:
            WarmStartError: The file does not fit the architecture (shape mismatch), cannot be
                read, or the hub cannot be reached.
        """
        kwargs: dict[str, object] = {"pretrained": True}
        if self.file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": self.file}
        try:
            return factory(width, num_classes, **kwargs)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            detail = "; ".join(line.strip() for line in first[:2])
            raise WarmStartError(
                f"weights {self.file or self.variant} do not fit {self.variant} (width {width:g}): {detail[:300]}",
                "name the file after the timm variant its weights were trained as (e.g. mobilenetv3_small_075.pth)",
            ) from exc
        except (OSError, ValueError) as exc:
            raise WarmStartError(f"cannot load weights {self.file or self.variant}: {str(exc).splitlines()[0][:300]}",
                                 "pass a readable timm/PyTorch state dict") from exc


@dataclass(frozen=True)
class WeightsSource:
    """Where warm-start weights come from: files by timm variant name, or timm's hub.

    Attributes:
        files: Local weights file by timm variant name.
        hub: Use timm's hub download for every variant timm publishes weights for.
    """

    files: tuple[tuple[str, str], ...] = ()
    hub: bool = False

    @classmethod
    def from_option(cls, option: str | None) -> "WeightsSource | None":
        """Parse ``--pretrained`` (``None``, ``imagenet``, a file or a folder).

        Raises:
            WarmStartError: The path does not exist, holds no weights file, or ``imagenet`` is asked
                for on a machine that cannot reach the hub.
        """
        if not option:
            return None
        if option == IMAGENET:
            require_hub()
            return cls(hub=True)
        path = Path(option).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
        elif path.is_file():
            found = [path]
        else:
            raise WarmStartError(f"--pretrained {option}: no such file or folder",
                                 "pass a weights file, a folder of them, or 'imagenet'")
        if not found:
            raise WarmStartError(f"--pretrained {option}: no weights file ({', '.join(WEIGHT_SUFFIXES)}) in it",
                                 "put files named after their timm variant there, e.g. mobilenetv3_small_075.pth")
        return cls(files=tuple((p.stem, str(p.resolve())) for p in found))

    def for_backbone(self, variant: str | None) -> WarmStart | None:
        """Weights for the timm ``variant`` (``None`` when there are none)."""
        if variant is None:
            return None
        for name, file in self.files:
            if name == variant:
                return WarmStart(variant, file)
        if self.hub and variant in published_variants():
            return WarmStart(variant)
        return None

    def unmatched_files(self, variants: set[str]) -> list[str]:
        """Files whose name is no known variant (they would never be used)."""
        return [file for name, file in self.files if name not in variants]


def published_variants() -> set[str]:
    """timm variants with published pretrained weights (``mobilenetv3_small_075``)."""
    import timm

    return {name.split(".")[0] for name in timm.list_pretrained()}


def require_hub(timeout_s: float = 3.0) -> None:
    """Fail in one line when timm's hub cannot be reached (instead of minutes of retries).

    Raises:
        WarmStartError: No network route to the hub.
    """
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return
    except OSError as exc:
        raise WarmStartError(f"--pretrained imagenet needs timm's hub ({HUB_HOST}), which this machine cannot reach "
                             f"({exc.strerror or type(exc).__name__})",
                             "pass --pretrained PATH with local weights files (e.g. mobilenetv3_small_075.pth)") from exc
