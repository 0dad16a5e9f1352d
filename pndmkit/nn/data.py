"""The digits data set: scikit-learn's bundled 1797 handwritten digits (8x8, no download) as 16x16 images.

>>> x, y = load_digits_images()
>>> tuple(x.shape), float(x.min()), float(x.max()), tuple(y.shape)
((1797, 1, 16, 16), -1.0, 1.0, (1797,))
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_digits_images", "to_uint8"]


def load_digits_images(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(x, labels)``: float32 images ``(1797, 1, size, size)`` in ``[-1, 1]`` and int64 labels.

    The 8x8 originals (grey levels 0..16) are upsampled bilinearly to ``size`` (8 leaves them as they are).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.images, dtype=np.float32) / 16.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()
    return x, torch.from_numpy(np.asarray(d.target, dtype=np.int64))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Map images in ``[-1, 1]`` of shape ``(B, C, H, W)`` to uint8 ``(B, H, W, C)``."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()
