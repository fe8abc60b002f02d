"""The smooth light field of a scene: vignetting, gradient and glare, 1.0 at the fiber centre."""

from __future__ import annotations

import numpy as np

from .scene import Scene

__all__ = ["light_at"]


def light_at(scene: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative light at pixel positions (x, y), same shape as x; 1.0 at the fiber centre.

    Vignetting follows 1 / (1 + k rho^2)^2 about the optical axis, scaled so the farthest
    frame corner is darkened by `vignette_frac`; a linear gradient and an optional glare spot
    multiply it. Exposure is not included (see `render`).
    """
    ill = scene.illumination
    cx, cy = scene.fiber_center_xy
    raw = _raw(scene, np.asarray(x, np.float64), np.asarray(y, np.float64))
    ref = _raw(scene, np.array([cx]), np.array([cy]), glare=False)[0]
    out = raw / ref
    if ill.glare_gain > 0:
        gx, gy = scene.to_px(ill.glare_xy_um)
        s = ill.glare_sigma_um / scene.um_per_px
        out = out * (1.0 + ill.glare_gain * np.exp(-((x - gx) ** 2 + (y - gy) ** 2) / (2 * s * s)))
    return out


def _raw(scene: Scene, x: np.ndarray, y: np.ndarray, glare: bool = True) -> np.ndarray:
    ill = scene.illumination
    w, h = scene.width, scene.height
    ox, oy = ill.vignette_center_frac[0] * (w - 1), ill.vignette_center_frac[1] * (h - 1)
    far = max(np.hypot(ox - cx, oy - cy) for cx in (0, w - 1) for cy in (0, h - 1))
    rho2 = ((x - ox) ** 2 + (y - oy) ** 2) / (far * far)
    v = min(max(ill.vignette_frac, 0.0), 0.95)
    k = (1.0 - v) ** -0.5 - 1.0
    field = 1.0 / (1.0 + k * rho2) ** 2
    gx, gy = ill.gradient_frac
    field = field * (1.0 + gx * (x / (w - 1) - 0.5) + gy * (y / (h - 1) - 0.5))
    return np.maximum(field, 0.02)
