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
  """DIS optical flow with one of OpenCV's presets ('ultrafast', 'fast', 'medium').

  `estimator(a, b)` is the flow from frame a to frame b, (H, W, 2) float32 (dx, dy) in pixels:
  pixel p of a shows what b shows at p + flow(p) (`nst_jax.core.motion`'s convention).
  """

  def __init__(self, preset: str = 'medium'):
    if preset not in PRESETS:
      raise ConfigError(f'flow preset {preset!r} is not one of: {", ".join(PRESETS)}')
    cv2 = _cv2()
    code = getattr(cv2, f'DISOPTICAL_FLOW_PRESET_{preset.upper()}')
    self._dis = cv2.DISOpticalFlow_create(code)

  def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from `a` to `b`, each (H, W, 3) in [0, 1] of one size."""
    if np.shape(a) != np.shape(b):
      raise ValueError(f'frames of different shapes {np.shape(a)} and {np.shape(b)}')
    return np.asarray(self._dis.calc(_gray(a), _gray(b), None), np.float32)


def check_available() -> None:
  """Raises `ConfigError` (one line naming the extra) if OpenCV is missing."""
  _cv2()
