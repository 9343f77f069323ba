r"""Measures video stylization: temporal consistency against `--independent`, and its cost.

  python scripts/benchmark_video.py --suite=consistency --output pan.json
  python scripts/benchmark_video.py --suite=real --clips=gif:waves --output real.json
  python scripts/benchmark_video.py --suite=cost --sizes=128,256 --output cost.json
  (docs/video.md has the exact commands of its figures)

consistency: synthetic pans over scikit-image photographs (each frame a crop of the photograph,
moved by a whole number of pixels per frame, so that the true flow is exact and needs no
resampling). For each clip and mode: the warp error, the mean absolute difference (8-bit levels)
between consecutive stylized frames over the pixels that stay in view, moved by the true flow;
and each frame's style and content terms under the evaluation objective (`lab.evaluation`,
Gatys' default, as saved in 8 bits). Ratios are against 'independent' on the same clip.

real: the same on a real clip, scikit-image's bundled `no_time_for_that_tiny.gif` (24 frames of
25x14 px, upscaled: the only image sequence scikit-image ships), with the warp error measured
through DIS flow and its certainty (pixels with c > 0.5).

cost: seconds per frame per pass (one pass of `--frames` frames as one batch, after a warm-up
pass that compiles), and the batching ratio: that pass's time against the same frames stylized
one by one (separate `stylize` calls, the same steps), at each size.

summary: merges runs (`--inputs`, e.g. one process per mode, which a shared machine schedules
side by side) by clip, with each mode's ratios to 'independent'; with `--gallery` and
`--save_frames`, writes the first clip's input, independent and multipass frames side by side as
an animated GIF, and as a sheet of frames (`<gallery>_frames.jpg`).

`--modes` lists configurations as NAME[@field=value...] over `--config` (e.g.
`multipass@video.temporal_target=blend`); ratios need 'independent' among them.
"""

import json
import os
import time

import numpy as np
from absl import app, flags
from PIL import Image

from nst_jax.core import motion
from nst_jax.io import flow as flow_lib
from nst_jax.io import images, weights
from nst_jax.io import video as video_io
from nst_jax.lab import evaluation, samples
from nst_jax.run import config as config_lib
from nst_jax.run import engine
from nst_jax.run import video as video_lib

_SUITE = flags.DEFINE_enum(
  'suite', 'consistency', ['consistency', 'real', 'cost', 'summary'], 'What.'
)
_INPUTS = flags.DEFINE_list('inputs', [], 'summary: JSON files of runs to merge.')
_CONFIG = flags.DEFINE_string('config', 'configs/video.py', 'Config file (with @overrides).')
_MODES = flags.DEFINE_list(
  'modes', ['independent', 'multipass'], 'NAME[@field=value...]: video.mode and overrides.'
)
_CLIPS = flags.DEFINE_list(
  'clips', ['astronaut:swirls', 'coffee:mosaic', 'chelsea:waves'], 'CONTENT:STYLE pans.'
)
_FRAMES = flags.DEFINE_integer('frames', 8, 'Frames per clip.')
_SIZE = flags.DEFINE_integer('size', 128, 'Image size (consistency and real suites).')
_SIZES = flags.DEFINE_list('sizes', ['128', '256'], 'Sizes of the cost suite.')
_SHIFT = flags.DEFINE_list('shift', ['3', '2'], 'Pan per frame, (dx, dy) pixels.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file.', required=True)
_SAVE_FRAMES = flags.DEFINE_string('save_frames', None, 'Folder for the stylized frames (npz).')
_GALLERY = flags.DEFINE_string(
  'gallery', None, 'Animated GIF: the first clip, input and each mode side by side.'
)


def pan(name: str, size: int, frames: int, shift: tuple[int, int]) -> np.ndarray:
  """(F, size, size, 3): crops of a photograph, each `shift` (dx, dy) px from the last."""
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
  x = np.round(np.clip(results, 0, 1) * 255.0)
  now = x[1:, : x.shape[1] - dy, : x.shape[2] - dx]
  before = x[:-1, dy:, dx:]
  return float(np.mean(np.abs(now - before)))


def flow_warp_error(results: np.ndarray, frames: np.ndarray) -> float:
  """The same through DIS flow between the input frames, over pixels with certainty > 0.5."""
  clip = video_lib.estimate_motion(frames)
  x = np.round(np.clip(results, 0, 1) * 255.0)
  warped = np.stack(
    [np.asarray(motion.warp(x[j - 1], clip.to_previous[j])) for j in range(1, len(x))]
  )
  certain = np.asarray(clip.from_previous[1:, ..., 0]) > 0.5
  return float(np.abs(x[1:] - warped).mean(axis=-1)[certain].mean())


def load_config(spec: str):
  name, *overrides = spec.split('@')
  config = config_lib.from_file(_CONFIG.value.split('@')[0])
  for override in _CONFIG.value.split('@')[1:] + overrides:
    config_lib.apply_override(config, override)
  config.video.mode = name
  return config


def side_by_side(path: str, clips: list[np.ndarray], fps: float = 6.0) -> None:
  """Writes (F, H, W, 3) clips next to each other, 4 px apart, as an animated GIF."""
  gap = np.ones((*clips[0].shape[:2], 4, 3), np.float32)
  row = np.concatenate([part for clip in clips for part in (clip, gap)][:-1], axis=2)
  video_io.write_frames(path, row, [], fps)


def consistency(frames, style, network, warp_error) -> dict:
  out = {}
  made = [frames]
  evaluator = evaluation.Evaluator(frames, [style], network=network)
  for spec in _MODES.value:
    config = load_config(spec)
    config.image_size = max(frames.shape[1:3])
    start = time.monotonic()
    results = video_lib.stylize_video(frames, style, config, network=network)
    seconds = time.monotonic() - start
    scores = evaluator(results)
    made.append(results)
    out[spec] = {
      'warp_error': warp_error(results),
      'gram': scores.terms['gram'].tolist(),
      'content': scores.terms['content'].tolist(),
      'seconds': seconds,
    }
    if _SAVE_FRAMES.value:
      os.makedirs(_SAVE_FRAMES.value, exist_ok=True)
      tag = spec.replace('@', '_').replace('=', '-')
      np.savez_compressed(os.path.join(_SAVE_FRAMES.value, f'{tag}.npz'), results=results)
    print(
      spec,
      {k: v for k, v in out[spec].items() if k in ('warp_error', 'seconds')},
      'gram median',
      float(np.median(scores.terms['gram'])),
      flush=True,
    )
  if _GALLERY.value and not os.path.exists(_GALLERY.value):  # The first clip only.
    side_by_side(_GALLERY.value, made)
  return add_ratios(out)


def add_ratios(rows: dict) -> dict:
  """Each mode's warp error and median style and content terms over 'independent''s."""
  if 'independent' not in rows:  # A run of other modes alone: see --suite=summary.
    return rows
  base = rows['independent']
  for row in rows.values():
    row['warp_error_ratio'] = row['warp_error'] / base['warp_error']
    row['gram_ratio'] = float(np.median(row['gram']) / np.median(base['gram']))
    row['content_ratio'] = float(np.median(row['content']) / np.median(base['content']))
  return rows


def gallery(path: str) -> None:
  """The first clip of `--clips` with `--save_frames`' independent and multipass frames: an
  animated GIF side by side, and a sheet of the frames (rows) as a JPEG next to it."""
  content = _CLIPS.value[0].split(':')[0]
  frames = pan(content, _SIZE.value, _FRAMES.value, tuple(int(s) for s in _SHIFT.value))
  made = [frames]
  for tag in ('independent', 'multipass'):
    with np.load(os.path.join(_SAVE_FRAMES.value, f'{tag}.npz')) as saved:
      made.append(saved['results'])
  side_by_side(path, made)
  gap = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
  rows = [
    np.concatenate([p for f in clip for p in (f, gap(f.shape[0], 4, 3))][:-1], 1) for clip in made
  ]
  sheet = np.concatenate([p for r in rows for p in (r, gap(4, r.shape[1], 3))][:-1], 0)
  images.save_image(os.path.splitext(path)[0] + '_frames.jpg', sheet)


def summary() -> dict:
  """Merges runs of single modes (one process each) by clip, with the ratios."""
  merged = {}
  for path in _INPUTS.value:
    with open(path) as f:
      run = json.load(f)
    settings = {k: run[k] for k in ('config', 'frames', 'size') if k in run}
    for clip, rows in run.items():
      if isinstance(rows, dict) and clip != 'cost':
        merged.setdefault(clip, {'settings': settings, 'modes': {}})['modes'].update(rows)
  for clip in merged.values():
    add_ratios(clip['modes'])
  return merged


def cost(network) -> dict:
  out = {}
  for size in map(int, _SIZES.value):
    config = load_config('multipass')
    config.image_size = size
    frames = pan('astronaut', size, _FRAMES.value, (3, 2))
    style = samples.swirls(size)
    run = video_lib.VideoRun.create(frames, config)
    given = run.inputs(0)

    def batch(index, given=given, run=run, config=config, style=style):
      start = time.monotonic()
      engine.stylize(
        run.frames[index],
        [style],
        config,
        guides={k: v[index] for k, v in given.guides.items()},
        network=network,
      )
      return time.monotonic() - start

    every = list(range(len(frames)))
    batch(every)  # Compiles.
    batch([0])
    rounds = []
    for _ in range(2):  # Interleaved: the batch, then the frames one by one.
      together = batch(every)
      alone = sum(batch([j]) for j in every)
      rounds.append((together, alone))
    together = float(np.median([r[0] for r in rounds]))
    alone = float(np.median([r[1] for r in rounds]))
    out[size] = {
      'frames': len(frames),
      'steps_per_pass': config.schedule.num_steps,
      'seconds_per_frame_per_pass': together / len(frames),
      'seconds_per_frame_step': together / len(frames) / config.schedule.num_steps,
      'seconds_per_frame_one_by_one': alone / len(frames),
      'batching_ratio': together / alone,
      'rounds': rounds,
    }
    print(size, out[size], flush=True)
  return out


def main(argv):
  del argv
  if _SUITE.value == 'summary':
    with open(_OUTPUT.value, 'w') as f:
      json.dump(summary(), f, indent=1)
    if _GALLERY.value:
      gallery(_GALLERY.value)
    return
  config = load_config('multipass')
  network = weights.load_vgg19(config.network.weights, pooling=config.network.pooling)
  shift = tuple(int(s) for s in _SHIFT.value)
  size, count = _SIZE.value, _FRAMES.value
  result = {
    'suite': _SUITE.value,
    'config': _CONFIG.value,
    'modes': _MODES.value,
    'frames': count,
    'size': size,
  }
  if _SUITE.value == 'consistency':
    result['shift'] = shift
    for clip in _CLIPS.value:
      content, style_name = clip.split(':')
      frames = pan(content, size, count, shift)
      style = getattr(samples, style_name)(size)
      print('clip', clip, flush=True)
      result[clip] = consistency(frames, style, network, lambda r, s=shift: pan_warp_error(r, s))
  elif _SUITE.value == 'real':
    import imageio.v3 as iio
    import skimage.data

    path = os.path.join(os.path.dirname(skimage.data.__file__), 'no_time_for_that_tiny.gif')
    raw = iio.imread(path, index=None)[:count].astype(np.float32) / 255.0
    frames = video_lib.fit_frames(raw, size)
    for clip in _CLIPS.value:
      style = getattr(samples, clip.split(':')[1])(size)
      result[clip] = consistency(frames, style, network, lambda r, f=frames: flow_warp_error(r, f))
  elif _SUITE.value == 'cost':
    flow_lib.check_available()
    result['cost'] = cost(network)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(result, f, indent=1)


if __name__ == '__main__':
  app.run(main)
