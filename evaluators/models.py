"""Backbone registry: timm architectures with a width multiplier, built from names.

Every backbone a space may name is registered here (:data:`BACKBONES`, the generic registry of
:mod:`spaces.registries`). timm's public ``create_model`` cannot take a channel multiplier, so
the factories call timm's private generators (``_gen_mobilenet_v3``, ``_gen_lcnet``,
``_gen_mobilenet_v2``, ``_gen_efficientnet_lite``, ``_gen_mnasnet_b1``); this module is the only
place that touches them. Each factory names the timm variant of its width, so timm's own
pretrained configuration (and a local weights file given to it) fits the model. MobileOne's ``width_factor`` breaks its grouped convolutions, so its factory scales every
block's channels and the stem with ``make_divisible`` in a copied ``ByobCfg`` instead.

Invariants:
    * ``build_model`` never downloads anything: ``pretrained`` is a local file or ``None``.
    * Every registered model exposes timm's ``forward_features`` / ``forward_head`` /
      ``get_classifier``, which :func:`features_and_logits` relies on (also after pruning).
    * The same (backbone, width, num_classes) always gives the same parameter shapes.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from evaluators.errors import HwsearchError
from spaces.registries import Registry

if TYPE_CHECKING:
    from evaluators.warm_start import WarmStart

_LOG = logging.getLogger(__name__)

BackboneFactory = Callable[..., nn.Module]
"""``factory(width, num_classes, **timm_kwargs) -> model`` with freshly initialised weights; timm's
``pretrained=True`` (with ``pretrained_cfg_overlay=dict(file=...)`` for a local file) loads weights."""


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: Registry name (``mobilenetv3_small``).
        factory: See :data:`BackboneFactory`.
        variant: ``width -> timm model name`` of the pretrained weights for that width
            (``mobilenetv3_small_075``), or ``None`` when timm names no such variant.
    """

    name: str
    factory: BackboneFactory
    variant: Callable[[float], str | None]


BACKBONES: Registry[BackboneSpec] = Registry("backbone")


def register_backbone(
    name: str, variant: Callable[[float], str | None] | None = None,
) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator registering ``factory(width, num_classes, **timm_kwargs)`` under ``name``.

    Args:
        name: Backbone name the spaces use.
        variant: ``width -> timm variant name`` for pretrained weights (default: none).

    Raises:
        ValueError: If ``name`` is already registered.
    """

    def decorate(factory: BackboneFactory) -> BackboneFactory:
        BACKBONES.add(name, BackboneSpec(name, factory, variant or (lambda width: None)))
        return factory

    return decorate


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return BACKBONES.names()


def _width_variant(stem: str, widths: tuple[float, ...]) -> Callable[[float], str | None]:
    """``stem_050``-style timm names for the given widths (``None`` for other widths)."""
    return lambda width: f"{stem}_{round(width * 100):03d}" if float(width) in widths else None


def _fixed_variant(name: str) -> Callable[[float], str | None]:
    """A backbone whose pretrained weights exist at width 1 only."""
    return lambda width: name if float(width) == 1.0 else None


@dataclass(frozen=True)
class LoadReport:
    """What loading a local state dict did.

    Attributes:
        loaded: Tensors copied into the model.
        missing: Model tensors not loaded, left at their initial values (absent from the file or
            shape-mismatched).
        mismatched: Tensors present in both but with different shapes (e.g. a classifier trained
            for another number of classes, or another width), skipped.
        unexpected: Tensors in the file that the model does not have, ignored.
    """

    loaded: int
    missing: int
    mismatched: int
    unexpected: int


def build_model(
    backbone: str, width: float, num_classes: int, *, pretrained: str | Path | None = None,
    weights: "WarmStart | None" = None,
) -> nn.Module:
    """Build ``backbone`` with every layer's channels multiplied by ``width``.

    Args:
        backbone: A name from :func:`list_backbones`.
        width: Channel multiplier (> 0); channel counts are rounded to multiples of 8 as timm does.
        num_classes: Outputs of the classifier.
        pretrained: Optional local state dict (``.pth``/``.pt``/``.safetensors``, plain or wrapped in
            ``state_dict``/``model``/``state_dict_ema``) loaded with :func:`load_pretrained`.
        weights: Warm-start weights for exactly this backbone and width, loaded by timm
            (:class:`evaluators.warm_start.WarmStart`): a local file, shapes checked strictly
            (the classifier is re-initialised for ``num_classes``), or timm's hub download.

    Returns:
        The model in train mode.

    Raises:
        UnknownNameError: Unknown backbone (the message lists the known ones).
        ValueError: ``width <= 0`` or ``num_classes < 1``.
        HwsearchError: ``pretrained`` is missing or shares no tensor with the model.
    """
    spec = BACKBONES.get(backbone)
    if width <= 0:
        raise ValueError(f"width={width} must be > 0")
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    if weights is not None:
        model = weights.build(spec.factory, float(width), int(num_classes))
    else:
        model = spec.factory(float(width), int(num_classes))
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model.train()


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Copy the tensors of a local checkpoint into ``model`` (non-strict), in place.

    Tensors whose shapes differ from the model's are skipped rather than failing, so an ImageNet
    checkpoint initialises every layer but a classifier with another number of classes. The
    counts are logged and returned. The file is read with ``weights_only=True`` (no pickled code).

    Raises:
        HwsearchError: The file does not exist or is not a readable state dict, or not a single
            tensor fits the model (wrong backbone or width).
    """
    from timm.models import load_state_dict

    path = Path(path)
    if not path.is_file():
        raise HwsearchError(
            f"pretrained weights file {path} does not exist",
            "pass the path of a local timm state dict (.pth or .safetensors); nothing is downloaded",
        )
    try:
        state = load_state_dict(str(path), use_ema=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load/safetensors raise many unrelated types
        raise HwsearchError(
            f"cannot read pretrained weights file {path}: {str(exc).splitlines()[0]}",
            "save a state dict (torch.save(model.state_dict(), path)), not a pickled model",
        ) from exc
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    mismatched = sum(1 for k, v in state.items() if k in own and own[k].shape != v.shape)
    if not fitting:
        raise HwsearchError(
            f"pretrained weights file {path} shares no tensor with this model",
            "use a checkpoint of the same backbone and width",
        )
    result = model.load_state_dict(fitting, strict=False)
    report = LoadReport(
        loaded=len(fitting),
        missing=len(result.missing_keys),
        mismatched=mismatched,
        unexpected=sum(1 for k in state if k not in own),
    )
    _LOG.info(
        "loaded %d tensors from %s (%d missing, %d shape-mismatched, %d unexpected)",
        report.loaded, path, report.missing, report.mismatched, report.unexpected,
    )
    return report


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` once and return ``(embedding, logits)``.

    The embedding is the pooled pre-classifier feature vector (``forward_head(pre_logits=True)``),
    the input of ArcFace and triplet losses; ``logits`` equal ``model(x)`` (no registered backbone
    configures dropout). Works on every registered backbone, before and after pruning.
    """
    embedding = model.forward_head(model.forward_features(x), pre_logits=True)
    return embedding, model.get_classifier()(embedding)


def prepare_for_export(model: nn.Module) -> nn.Module:
    """The deployable form of ``model``: a reparameterized copy in eval mode.

    MobileOne's multi-branch blocks are fused into single convolutions
    (``timm.utils.reparameterize_model``); other backbones have nothing to fuse and come back as
    an equal copy. ``model`` itself is never modified; applying this twice is harmless.
    """
    from timm.utils import reparameterize_model

    return reparameterize_model(model, inplace=False).eval()


def _variant_or(default: str, variant: Callable[[float], str | None], width: float) -> str:
    """The timm variant name of ``width`` (its pretrained config), else ``default``."""
    return variant(width) or default


_MNV3_SMALL = _width_variant("mobilenetv3_small", (0.5, 0.75, 1.0))
_MNV3_LARGE = _width_variant("mobilenetv3_large", (0.75, 1.0))
_LCNET = _width_variant("lcnet", (0.35, 0.5, 0.75, 1.0))
_MNV2 = _width_variant("mobilenetv2", (0.35, 0.5, 0.75, 1.0))
_MNASNET = _width_variant("mnasnet", (0.5, 0.75, 1.0))


@register_backbone("mobilenetv3_small", _MNV3_SMALL)
def _mobilenetv3_small(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.mobilenetv3 import _gen_mobilenet_v3

    return _gen_mobilenet_v3(_variant_or("mobilenetv3_small_100", _MNV3_SMALL, width), channel_multiplier=width,
                             num_classes=num_classes, **timm_kwargs)


@register_backbone("mobilenetv3_large", _MNV3_LARGE)
def _mobilenetv3_large(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.mobilenetv3 import _gen_mobilenet_v3

    return _gen_mobilenet_v3(_variant_or("mobilenetv3_large_100", _MNV3_LARGE, width), channel_multiplier=width,
                             num_classes=num_classes, **timm_kwargs)


@register_backbone("lcnet", _LCNET)
def _lcnet(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.mobilenetv3 import _gen_lcnet

    return _gen_lcnet(_variant_or("lcnet_100", _LCNET, width), channel_multiplier=width, num_classes=num_classes,
                      **timm_kwargs)


@register_backbone("mobilenetv2", _MNV2)
def _mobilenetv2(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.efficientnet import _gen_mobilenet_v2

    return _gen_mobilenet_v2(_variant_or("mobilenetv2_100", _MNV2, width), channel_multiplier=width,
                             num_classes=num_classes, **timm_kwargs)


@register_backbone("efficientnet_lite0", _fixed_variant("efficientnet_lite0"))
def _efficientnet_lite0(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.efficientnet import _gen_efficientnet_lite

    return _gen_efficientnet_lite("efficientnet_lite0", channel_multiplier=width, num_classes=num_classes,
                                  **timm_kwargs)


@register_backbone("mnasnet", _MNASNET)
def _mnasnet(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.models.efficientnet import _gen_mnasnet_b1

    return _gen_mnasnet_b1(_variant_or("mnasnet_100", _MNASNET, width), channel_multiplier=width,
                           num_classes=num_classes, **timm_kwargs)


@register_backbone("mobileone_s0", _fixed_variant("mobileone_s0"))
def _mobileone_s0(width: float, num_classes: int, **timm_kwargs: object) -> nn.Module:
    from timm.layers import make_divisible
    from timm.models import build_model_with_cfg
    from timm.models.byobnet import ByobNet, model_cfgs

    base = copy.deepcopy(model_cfgs["mobileone_s0"])
    blocks = tuple(
        tuple(dataclasses.replace(block, c=make_divisible(block.c * width)) for block in stage)
        for stage in base.blocks
    )
    cfg = dataclasses.replace(base, blocks=blocks, stem_chs=make_divisible(base.stem_chs * width))
    pretrained = bool(timm_kwargs.pop("pretrained", False))
    return build_model_with_cfg(
        ByobNet, "mobileone_s0", pretrained, model_cfg=cfg,
        feature_cfg=dict(flatten_sequential=True), num_classes=num_classes, **timm_kwargs,
    )
