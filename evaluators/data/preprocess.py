"""THE preprocessing of an image for a model: the single definition training, evaluation, export
calibration and the model card all use.

``preprocess(image, R)``: convert to RGB, resize to ``R x R`` with ``Image.BILINEAR`` (Pillow
filters the whole footprint when shrinking, so downscaling is anti-aliased), scale to [0, 1],
normalise with the ImageNet mean and standard deviation, and lay out as float32 CHW. The aspect
ratio is not kept (lesion images are close to square; a deployed model sees the same stretch).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""ImageNet channel statistics (RGB) used to normalise every input."""

_MEAN32 = np.asarray(MEAN, dtype=np.float32)
_STD32 = np.asarray(STD, dtype=np.float32)


def resize_rgb(image: Image.Image, resolution: int) -> np.ndarray:
    """The image as RGB, resized to ``resolution`` square with bilinear filtering.

    Returns:
        ``uint8`` array of shape ``(resolution, resolution, 3)``.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.size != (resolution, resolution):
        rgb = rgb.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """Normalise ``uint8`` HWC (or NHWC) RGB pixels to float32 CHW (or NCHW).

    ``out[c] = (pixels[..., c] / 255 - MEAN[c]) / STD[c]``, evaluated in float32 in exactly this
    order, so every caller (and a NumPy re-implementation on the device) gets identical values.
    """
    values = (pixels.astype(np.float32) / np.float32(255.0) - _MEAN32) / _STD32
    return np.ascontiguousarray(np.moveaxis(values, -1, -3))


def preprocess(image: Image.Image, resolution: int) -> np.ndarray:
    """Model input for one image: float32 array of shape ``(3, resolution, resolution)``.

    Args:
        image: Any Pillow image (converted to RGB).
        resolution: Side of the square model input.

    Returns:
        ``(3, R, R)`` float32, ImageNet-normalised.
    """
    return normalise(resize_rgb(image, resolution))
