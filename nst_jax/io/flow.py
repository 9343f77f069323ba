"""Optical flow between frames, on the host: OpenCV's DIS flow (Kroeger et al. 2016).

DIS is fast, needs no learned network, and is accurate enough for the temporal loss: on
scikit-image's stereo pair with known disparity it erred by 2.4 px on average, Farneback by 25.
It comes with the `video` extra (`pip install 'nst_jax[video]'`: opencv-python-headless).
"""

import numpy as np

from nst_jax.errors import ConfigError

PRESETS = ('ultrafast', 'fast', 'medium')


def _cv2():
  try:
    import cv2
  except ImportError:
    raise ConfigError(
      "optical flow needs OpenCV, which is not installed: pip install 'nst_jax[video]'"
    ) from None
  return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
  """(H, W, 3) floats in [0, 1] -> (H, W) uint8 luminance, contiguous (as DIS wants)."""
  rgb = np.clip(np.asarray(frame, np.float32), 0.0, 1.0)
  y = rgb @ np.asarray([0.299, 0.587, 0.114], np.float32)
  return np.ascontiguousarray(np.round(y * 255.0).astype(np.uint8))


class FlowEstimator:
  """DIS optical flow with one of OpenCV's presets ('ultrafast', 'fast', 'medium'), refined to
  full resolution.

  `estimator(a, b)` is the flow from frame a to frame b, (H, W, 2) float32 (dx, dy) in pixels:
  pixel p of a shows what b shows at p + flow(p) (`nst_jax.core.motion`'s convention).

  The presets stop at half resolution or coarser (finest scale 1-3). With 'medium' on known
  pans over five photographs (`scripts/benchmark_video.py --suite=flow`), full resolution cut the
  median endpoint error 3x at 64 px, 5x at 128 px and 10x at 256 px, and up to 50x on flat
  regions (a pan under a clear sky: 0.17 px against 0.003 at 256 px), where a stylized texture
  shows every error as flicker. It costs about 3x a preset's host time (36 ms a flow at 256 px).
  `full_resolution=False` keeps the preset's own finest scale (to compare).
  """

  def __init__(self, preset: str = 'medium', *, full_resolution: bool = True):
    if preset not in PRESETS:
      raise ConfigError(f'flow preset {preset!r} is not one of: {", ".join(PRESETS)}')
    cv2 = _cv2()
    code = getattr(cv2, f'DISOPTICAL_FLOW_PRESET_{preset.upper()}')
    self._dis = cv2.DISOpticalFlow_create(code)
    if full_resolution:
      self._dis.setFinestScale(0)

  def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from `a` to `b`, each (H, W, 3) in [0, 1] of one size."""
    if np.shape(a) != np.shape(b):
      raise ValueError(f'frames of different shapes {np.shape(a)} and {np.shape(b)}')
    return np.asarray(self._dis.calc(_gray(a), _gray(b), None), np.float32)


def check_available() -> None:
  """Raises `ConfigError` (one line naming the extra) if OpenCV is missing."""
  _cv2()
