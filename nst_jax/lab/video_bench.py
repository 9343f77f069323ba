"""Video stylization measured (`scripts/benchmark_video.py`): temporal consistency against
`--independent`, and the cost of a pass.

Consistency: synthetic pans over scikit-image photographs (`pan`: each frame a crop of the
photograph, moved by a whole number of pixels per frame, so that the true flow is exact and needs
no resampling). For each clip and mode: the warp error (`pan_warp_error`: the mean absolute
difference, in 8-bit levels, between consecutive stylized frames over the pixels that stay in
view, moved by the true flow), and each frame's style and content terms under the evaluation
objective (`nst_jax.lab.evaluation`, Gatys' default, as saved in 8 bits). Ratios are against
'independent' on the same clip (`add_ratios`).

Occlusion: a bar of texture moving across a still photograph (`occlusion`), so that the
background behind it disappears and comes back: the measure of long-term consistency. Besides
the warp error of the background that stays in view from frame to frame, the reappearance error
(`reappearance_error`): the mean |x_j - x_{j-k}| over the background pixels that were hidden
behind the bar in a frame between j-k and j, and visible in both.

Real: the same on a real clip, scikit-image's bundled `no_time_for_that_tiny.gif` (24 frames of
25x14 px, upscaled: the only image sequence scikit-image ships), with the warp error measured
through DIS flow and its certainty (`flow_warp_error`: pixels with c > 0.5).

Cost: seconds per frame per pass (one pass as one batch, after a warm-up pass that compiles), and
the batching ratio: that pass's time against the same frames stylized one by one (separate
`stylize` calls, the same steps).

A mode is a spec NAME[@field=value...] over the base config spec: `video.mode` and overrides
(e.g. `multipass@video.temporal_target=blend`).
"""

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np
from PIL import Image

from nst_jax.io import flow, images
from nst_jax.io import video as video_io
from nst_jax.lab import evaluation, samples
from nst_jax.run import config as config_lib
from nst_jax.run import engine
from nst_jax.run import video as video_lib


def _levels(results: np.ndarray) -> np.ndarray:
  """The 8-bit levels the frames are saved with, as floats (differences do not wrap)."""
  return images.to_8bit(results).astype(np.float32)


def pan(name: str, size: int, frames: int, shift: tuple[int, int]) -> np.ndarray:
  """(F, size, size, 3) in [0, 1]: crops of a scikit-image photograph, each `shift` (dx, dy) px
  from the last (the content moves left and up; new content enters at the right and bottom)."""
  photo = getattr(samples.skimage_data(), name)()
  dx, dy = shift
  side = size + max(dx, dy) * (frames - 1)
  h, w = photo.shape[:2]
  crop = photo[:, (w - h) // 2 : (w - h) // 2 + h] if w > h else photo[:w, :]
  big = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.LANCZOS))
  big = big.astype(np.float32) / 255.0
  return np.stack([big[j * dy : j * dy + size, j * dx : j * dx + size] for j in range(frames)])


def pan_warp_error(results: np.ndarray, shift: tuple[int, int]) -> float:
  """Mean |x_j(p) - x_{j-1}(p + shift)| over the pixels that stay in view, in 8-bit levels."""
  dx, dy = shift
  x = _levels(results)
  now = x[1:, : x.shape[1] - dy, : x.shape[2] - dx]
  before = x[:-1, dy:, dx:]
  return float(np.mean(np.abs(now - before)))


def pan_endpoint_error(
  estimate: flow.FlowEstimator, clip: np.ndarray, shift: tuple[int, int]
) -> float:
  """The mean endpoint error (pixels) of `estimate` between consecutive frames of `clip`, a pan
  by `shift` (see `pan`), against its exact flow."""
  true = -np.float32(shift)  # Frame i's pixel p shows what frame i+1 shows at p - shift.
  pairs = zip(clip[:-1], clip[1:], strict=True)
  return float(np.mean([np.linalg.norm(estimate(a, b) - true, axis=-1).mean() for a, b in pairs]))


def flow_errors(
  name: str, size: int, frames: int, shift: tuple[int, int], presets: Sequence[str]
) -> dict[str, dict[str, float]]:
  """`{preset: {'own': px, 'full': px}}`: DIS's mean endpoint error (pixels) against the exact
  flow of a pan over `name`, at the preset's own finest scale and refined to full resolution
  (`io.flow.FlowEstimator`'s `full_resolution`)."""
  clip = pan(name, size, frames, shift)
  return {
    preset: {
      label: pan_endpoint_error(flow.FlowEstimator(preset, full_resolution=full), clip, shift)
      for label, full in (('own', False), ('full', True))
    }
    for preset in presets
  }


def flow_warp_error(results: np.ndarray, frames: np.ndarray) -> float:
  """The warp error through the input frames' DIS flow, over the pixels with certainty > 0.5."""
  clip = video_lib.estimate_motion(frames)
  x = _levels(results)
  warped, certainty = video_lib.neighbours(x, clip, forward=True)
  certain = np.asarray(certainty[1:, ..., 0]) > 0.5
  return float(np.abs(x[1:] - np.asarray(warped[1:])).mean(axis=-1)[certain].mean())


def occlusion(
  name: str, size: int, frames: int, speed: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
  """A bar `width` px wide, cut from the photograph turned upside down, moving `speed` px to the
  right per frame across a still crop of scikit-image's photograph `name` (from column
  `size // 16`).

  Returns:
    `(frames (F, size, size, 3) in [0, 1], covered (F, size, size) bool: where the bar is)`.
  """
  (still,) = pan(name, size, 1, (0, 0))
  bar = still[::-1]
  clip, covered = np.repeat(still[None], frames, 0), np.zeros((frames, size, size), bool)
  for j in range(frames):
    left = size // 16 + j * speed
    columns = slice(left, min(left + width, size))
    clip[j, :, columns] = bar[:, columns]
    covered[j, :, columns] = True
  return clip, covered


def still_warp_error(results: np.ndarray, covered: np.ndarray) -> float:
  """Mean |x_j - x_{j-1}| over the background pixels visible in both, in 8-bit levels."""
  x = _levels(results)
  both = ~covered[1:] & ~covered[:-1]
  return float(np.abs(x[1:] - x[:-1]).mean(axis=-1)[both].mean())


def reappearance_error(results: np.ndarray, covered: np.ndarray, k: int) -> float:
  """Mean |x_j - x_{j-k}| over the background pixels visible in frames j and j-k but hidden in
  a frame between them, in 8-bit levels."""
  x = _levels(results)
  errors = []
  for j in range(k, len(x)):
    hidden = covered[j - k + 1 : j].any(axis=0)
    back = ~covered[j] & ~covered[j - k] & hidden
    errors.append(np.abs(x[j] - x[j - k]).mean(axis=-1)[back])
  return float(np.concatenate(errors).mean())


def mode_config(base: str, mode: str) -> ml_collections.ConfigDict:
  """The config of `mode` (NAME[@field=value...]) over `base` (FILE[@field=value...])."""
  name, *overrides = mode.split('@')
  config = config_lib.from_spec('@'.join([base, *overrides]))
  config.video.mode = name
  return config


def side_by_side(path: str, clips: Sequence[np.ndarray], fps: float = 6.0) -> None:
  """Writes (F, H, W, 3) clips next to each other, 4 px apart, as an animated GIF."""
  gap = np.ones((*clips[0].shape[:2], 4, 3), np.float32)
  row = np.concatenate([part for clip in clips for part in (clip, gap)][:-1], axis=2)
  video_io.write_frames(path, row, [], fps)


def consistency(
  frames: np.ndarray,
  style: np.ndarray,
  network: Any,
  errors: Mapping[str, Callable[[np.ndarray], float]],
  *,
  base: str,
  modes: Sequence[str],
  save_frames: str | None = None,
  gallery: str | None = None,
) -> dict[str, Any]:
  """Every mode on one clip: its `errors` (named figures of the stylized frames, 'warp_error'
  among them), per-frame style and content terms and seconds, and the ratios to 'independent'.
  `save_frames`: a folder for each mode's frames (npz); `gallery`: an animated GIF of the input
  and every mode side by side (written once)."""
  out = {}
  made = [frames]
  evaluator = evaluation.Evaluator(frames, [style], network=network)
  for spec in modes:
    config = mode_config(base, spec)
    config.image_size = max(frames.shape[1:3])
    start = time.monotonic()
    results = video_lib.stylize_video(frames, style, config, network=network)
    seconds = time.monotonic() - start
    scores = evaluator(results)
    made.append(results)
    out[spec] = {
      **{name: error(results) for name, error in errors.items()},
      'gram': scores.terms['gram'].tolist(),
      'content': scores.terms['content'].tolist(),
      'seconds': seconds,
    }
    if save_frames:
      os.makedirs(save_frames, exist_ok=True)
      tag = spec.replace('@', '_').replace('=', '-')
      np.savez_compressed(os.path.join(save_frames, f'{tag}.npz'), results=results)
    print(spec, f'warp error {out[spec]["warp_error"]:.2f}, {seconds:.0f} s', flush=True)
  if gallery and not os.path.exists(gallery):
    side_by_side(gallery, made)
  return add_ratios(out)


def add_ratios(rows: dict[str, Any]) -> dict[str, Any]:
  """Each mode's errors (figures named '*_error') and median style and content terms over
  'independent''s (in place; rows without 'independent' are left as they are)."""
  if 'independent' not in rows:
    return rows
  base = rows['independent']
  names = [name for name in base if name.endswith('_error')]
  for row in rows.values():
    for name in names:
      row[f'{name}_ratio'] = row[name] / base[name]
    row['gram_ratio'] = float(np.median(row['gram']) / np.median(base['gram']))
    row['content_ratio'] = float(np.median(row['content']) / np.median(base['content']))
  return rows


def gallery_sheet(path: str, clips: Sequence[np.ndarray]) -> None:
  """`clips` (input, then modes) as an animated GIF side by side at `path`, and as a sheet of
  their frames (one row per clip) in a JPEG next to it."""
  side_by_side(path, clips)
  gap = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
  rows = [
    np.concatenate([p for f in clip for p in (f, gap(f.shape[0], 4, 3))][:-1], 1) for clip in clips
  ]
  sheet = np.concatenate([p for r in rows for p in (r, gap(4, r.shape[1], 3))][:-1], 0)
  images.save_image(os.path.splitext(path)[0] + '_frames.jpg', sheet)


def saved_gallery(path: str, frames: np.ndarray, folder: str, modes: Sequence[str]) -> None:
  """`gallery_sheet` of the input `frames` and each mode's frames that `consistency` saved into
  `folder`, in the order of `modes` (specs as given to `consistency`)."""
  clips = [frames]
  for spec in modes:
    tag = spec.replace('@', '_').replace('=', '-')
    with np.load(os.path.join(folder, f'{tag}.npz')) as saved:
      clips.append(saved['results'])
  gallery_sheet(path, clips)


def merge_runs(paths: Sequence[str]) -> dict[str, Any]:
  """Merges runs of single modes (one JSON each) by clip, with the ratios."""
  merged: dict[str, Any] = {}
  for path in paths:
    with open(path) as f:
      run = json.load(f)
    settings = {k: run[k] for k in ('config', 'frames', 'size') if k in run}
    for clip, rows in run.items():
      if isinstance(rows, dict) and clip != 'cost':
        merged.setdefault(clip, {'settings': settings, 'modes': {}})['modes'].update(rows)
  for clip in merged.values():
    add_ratios(clip['modes'])
  return merged


def cost(network: Any, base: str, sizes: Sequence[int], frames: int) -> dict[int, Any]:
  """Per size: one multipass pass of `frames` frames as a batch against the frames one by one,
  interleaved twice after a compiling pass, medians."""
  out = {}
  for size in sizes:
    config = mode_config(base, 'multipass')
    config.image_size = size
    clip = pan('astronaut', size, frames, (3, 2))
    style = samples.swirls(size)
    run = video_lib.VideoRun.create(clip, config)
    given = run.inputs(0)

    def batch(index, given=given, run=run, config=config, style=style):
      start = time.monotonic()
      guides = {k: v[index] for k, v in given.guides.items()}
      engine.stylize(run.frames[index], [style], config, guides=guides, network=network)
      return time.monotonic() - start

    every = list(range(len(clip)))
    batch(every)  # Compiles.
    batch([0])
    rounds = []
    for _ in range(2):  # Interleaved: the batch, then the frames one by one.
      rounds.append((batch(every), sum(batch([j]) for j in every)))
    together = float(np.median([r[0] for r in rounds]))
    alone = float(np.median([r[1] for r in rounds]))
    out[size] = {
      'frames': len(clip),
      'steps_per_pass': config.schedule.num_steps,
      'seconds_per_frame_per_pass': together / len(clip),
      'seconds_per_frame_step': together / len(clip) / config.schedule.num_steps,
      'seconds_per_frame_one_by_one': alone / len(clip),
      'batching_ratio': together / alone,
      'rounds': rounds,
    }
    print(size, out[size], flush=True)
  return out


def real_clip(count: int, size: int) -> np.ndarray:
  """The first `count` frames of scikit-image's `no_time_for_that_tiny.gif`, fitted to `size`."""
  import imageio.v3 as iio  # The [video] extra.

  folder = os.path.dirname(samples.skimage_data().__file__)
  raw = iio.imread(os.path.join(folder, 'no_time_for_that_tiny.gif'), index=None)[:count]
  return video_lib.fit_frames(raw.astype(np.float32) / 255.0, size)
