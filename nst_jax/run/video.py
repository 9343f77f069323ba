"""Stylizing a clip without flicker: Ruder et al.'s temporal loss and multi-pass algorithm, with
every frame of a pass in one batch.

Stylizing each frame on its own flickers: a small change in a frame sends the optimisation
somewhere else. Ruder et al. ("Artistic style transfer for videos", 2016) tie each frame to its
neighbour's stylized frame, warped onto it with the optical flow, where the warp is certain
(`nst_jax.core.motion`): a temporal loss (`nst_jax.core.losses.temporal`) and a start image.

`config.video.mode` picks the algorithm:

* 'multipass' (the default): pass 1 stylizes every frame on its own; each later pass starts
  every frame from its previous result blended with its neighbour's, warped,
  `(x + blend * c * warped) / (1 + blend * c)` (Ruder's blendWeight, 1: an even mix where
  c = 1), and adds the temporal loss towards a target: the warped neighbour ('warped', Ruder's)
  or that blend ('blend'). Passes alternate direction: the neighbour is the previous frame in
  even passes, the next one in odd passes. Ruder runs a pass frame after frame, each frame
  using its neighbour's result of the same pass; here every frame of a pass is independent given
  the previous pass, so **a pass is one batch** (pair groups on a CPU, vmapped and sharded on
  accelerators). With `video.propagate`, a pass first blends along the clip in its direction
  (`motion.propagate`: each frame with its neighbour's *blend*, warped, as a sweep's starts but
  without the optimisation between frames, a cheap scan of warps), then optimises every frame
  from its blend, held to its neighbour's blend, as one batch: agreement travels the whole clip
  in every pass, as in a sweep.
* 'sweeps': Ruder's multi-pass as he runs it. Pass 1 stylizes every frame on its own (one
  batch); each later pass sweeps the clip frame after frame, alternating direction, each frame
  started from its own result blended with its neighbour's result *of this pass*, warped, and
  held to that warped neighbour. Agreement travels the whole clip in one sweep (Gauss-Seidel's
  order), and every new pixel at an entering edge starts from pass 1's stylization, not from
  the content; the sweeps do not batch.
* 'sequential': one pass, frame after frame, each started from the previous stylized frame
  warped (Ruder's `prevWarped`, the content where c = 0) with the temporal loss towards it: the
  single-pass baseline. With `video.long_term` offsets (Ruder's long-term consistency, e.g.
  (2, 4)), each frame is also held to the frames that far back, warped with the flow between
  the two, each pixel to the nearest frame that is certain there
  (`motion.long_term_certainties`).
* 'independent': every frame on its own (`--independent`), the flickering baseline.

Every mode spends `video.passes * schedule.num_steps` optimizer steps on each frame (a pass of
'multipass' or 'sweeps' runs `schedule.num_steps`), so that they compare at equal cost.

    result = nst_jax.stylize_video(frames, style, nst_jax.run.config.from_file('configs/video.py'))
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.core import color, motion, resample
from nst_jax.core.losses import temporal
from nst_jax.errors import ConfigError
from nst_jax.io import flow, weights
from nst_jax.run import config as config_lib
from nst_jax.run import engine
from nst_jax.run.history import Progress

MODES = ('multipass', 'sweeps', 'sequential', 'independent')
PASS_MODES = ('multipass', 'sweeps')  # Each pass runs schedule.num_steps per frame.
TARGETS = ('warped', 'blend')
# Colour controls whose result keeps only the optimised image's luminance: the temporal loss
# compares luminance there (the chroma is the content's, consistent by itself).
LUMINANCE_CONTROLS = ('preserve_colors', 'luminance_only', 'nnst')


class Motion(NamedTuple):
  """A clip's motion at the run's size, for F frames (F, H, W, ...); zeros where there is no
  neighbour (the first frame's previous, the last frame's next).

  Attributes:
    to_previous: (F, H, W, 2) the flow from frame j to frame j-1 (it warps j-1 onto j).
    from_previous: (F, H, W, 1) the certainty of frame j-1 warped onto frame j.
    to_next: (F, H, W, 2) the flow from frame j to frame j+1.
    from_next: (F, H, W, 1) the certainty of frame j+1 warped onto frame j.
    long_term: `(k, to_back (F, H, W, 2), from_back (F, H, W, 1))` per offset k > 1 of
      `config.video.long_term`: the flow from frame j to frame j-k (computed directly between
      the two frames, as Ruder et al. do) and the certainty of frame j-k warped onto frame j.
  """

  to_previous: jax.Array
  from_previous: jax.Array
  to_next: jax.Array
  from_next: jax.Array
  long_term: tuple[tuple[int, jax.Array, jax.Array], ...] = ()

  def toward(self, forward: bool) -> tuple[jax.Array, jax.Array]:
    """`(flows, certainties)` towards each frame's previous (`forward`) or next neighbour."""
    if forward:
      return self.to_previous, self.from_previous
    return self.to_next, self.from_next


@functools.partial(jax.jit, static_argnames='tolerance')
def _certainties(forward, backward, previous, current, tolerance: float):
  """`motion.certainty` of each frame (leading axis F), with the colour check's `tolerance`."""
  one = lambda *a: motion.certainty(*a, tolerance=tolerance)  # noqa: E731
  return jax.vmap(one)(forward, backward, previous, current)


_warp = jax.jit(jax.vmap(motion.warp))


def estimate_motion(
  frames: np.ndarray,
  preset: str = 'medium',
  long_term: tuple[int, ...] = (),
  tolerance: float = 1.0,
) -> Motion:
  """DIS flows both ways between consecutive frames (on the host) and their certainties; and
  for each offset k in `long_term`, between each frame and the one k frames back.

  Args:
    frames: (F, H, W, 3) in [0, 1], F >= 2.
    preset: the DIS preset (`nst_jax.io.flow.PRESETS`).
    long_term: offsets k > 1 (`config.video.long_term`); offsets of F or more are left out.
    tolerance: the certainty's colour check (`motion.certainty`; `config.video.color_tolerance`).
  """
  estimator = flow.FlowEstimator(preset)
  pad = lambda x, where: jnp.pad(x, [where] + [(0, 0)] * (x.ndim - 1))  # noqa: E731

  def flows(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The flows from frame j-k to frame j and back, for j >= k: (F-k, H, W, 2) each."""
    pairs = list(zip(frames[:-k], frames[k:], strict=True))
    ahead = np.stack([estimator(a, b) for a, b in pairs])
    return ahead, np.stack([estimator(b, a) for a, b in pairs])

  ahead, back = flows(1)
  earlier, later = frames[:-1], frames[1:]
  # Frame j+1's trust in frame j warped onto it, and frame j's in frame j+1.
  from_previous = _certainties(ahead, back, earlier, later, tolerance)
  from_next = _certainties(back, ahead, later, earlier, tolerance)
  long = []
  for k in (k for k in long_term if k < len(frames)):
    ahead_k, back_k = flows(k)
    # Frame j's trust in frame j-k warped onto it.
    trust = _certainties(ahead_k, back_k, frames[:-k], frames[k:], tolerance)
    long.append((k, pad(jnp.asarray(back_k), (k, 0)), pad(trust, (k, 0))))
  return Motion(
    to_previous=pad(jnp.asarray(back), (1, 0)),
    from_previous=pad(from_previous, (1, 0)),
    to_next=pad(jnp.asarray(ahead), (0, 1)),
    from_next=pad(from_next, (0, 1)),
    long_term=tuple(long),
  )


def neighbours(results: Any, clip: Motion, forward: bool) -> tuple[jax.Array, jax.Array]:
  """Every frame's neighbour's result warped onto it, and the certainty of that warp.

  Args:
    results: (F, H, W, 3) the current stylized frames.
    clip: the clip's motion.
    forward: the neighbour is the previous frame (else the next one).

  Returns:
    `(warped (F, H, W, 3), certainty (F, H, W, 1))`; the certainty is 0 for the frame without
    such a neighbour.
  """
  results = jnp.asarray(results, jnp.float32)
  flows, certainty = clip.toward(forward)
  if forward:
    source = jnp.concatenate([results[:1], results[:-1]])
  else:
    source = jnp.concatenate([results[1:], results[-1:]])
  return _warp(source, flows), certainty


def neighbour(results: Any, clip: Motion, j: int, forward: bool) -> tuple[jax.Array, jax.Array]:
  """`neighbours` for frame j alone: `(warped (1, H, W, 3), certainty (1, H, W, 1))`."""
  k = min(max(j - 1 if forward else j + 1, 0), len(results) - 1)
  flows, certainty = clip.toward(forward)
  source = jnp.asarray(results[k : k + 1], jnp.float32)
  return _warp(source, flows[j : j + 1]), certainty[j : j + 1]


_propagate = jax.jit(motion.propagate)


def propagated(
  results: Any, clip: Motion, forward: bool, weight: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """A pass's starts blended along the clip in its direction (`motion.propagate`).

  Returns:
    `(start (F, H, W, 3), warped neighbour's blend (F, H, W, 3), certainty (F, H, W, 1))`.
  """
  flows, certainty = clip.toward(forward)
  # Backwards, the clip is propagated reversed: each frame's neighbour is then its predecessor.
  order = (lambda x: x) if forward else (lambda x: x[::-1])
  start, warped = _propagate(
    order(jnp.asarray(results, jnp.float32)), order(flows), order(certainty), weight
  )
  return order(start), order(warped), certainty


class Batch(NamedTuple):
  """One `stylize` call of a video run.

  Attributes:
    frames: the frames it stylizes (indices).
    kind: 'first' (every frame on its own: the first pass, or independent mode),
      'forward' / 'backward' (a later multipass pass; the neighbour is the previous / next
      frame), 'forward_sweep' / 'backward_sweep' (one frame of a later pass of 'sweeps'), or
      'sequential' (one frame, after its predecessor).
    label: for progress displays, e.g. 'pass 2/4' or 'frame 3/16'.
  """

  frames: tuple[int, ...]
  kind: str
  label: str


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` for a bad `config.video` field (one line naming it)."""
  v = config.video
  for value, field, choices in (
    (v.mode, 'mode', MODES),
    (v.temporal_target, 'temporal_target', TARGETS),
    (v.flow_preset, 'flow_preset', flow.PRESETS),
  ):
    if value not in choices:
      raise ConfigError(
        f'config.video.{field}={value!r} is not one of: {", ".join(map(repr, choices))}'
      )
  if not isinstance(v.passes, int) or v.passes < 1:
    raise ConfigError(f'config.video.passes={v.passes!r} must be an integer >= 1')
  if not isinstance(v.propagate, bool):
    raise ConfigError(f'config.video.propagate={v.propagate!r} must be True or False')
  if not 0 <= v.color_tolerance <= 1:
    raise ConfigError(f'config.video.color_tolerance={v.color_tolerance!r} must be in [0, 1]')
  if not v.blend >= 0:
    raise ConfigError(f'config.video.blend={v.blend!r} must be >= 0')
  offsets = list(v.long_term) if isinstance(v.long_term, tuple | list) else None
  if offsets is None or any(not isinstance(k, int) or k < 2 for k in offsets):
    raise ConfigError(
      f'config.video.long_term={v.long_term!r} must be a tuple of frame offsets >= 2, e.g. (2, 4)'
    )
  if offsets != sorted(set(offsets)):
    raise ConfigError(f'config.video.long_term={v.long_term!r} must be increasing')
  if offsets and v.mode != 'sequential':
    raise ConfigError(
      f"config.video.long_term={v.long_term!r} needs config.video.mode='sequential' "
      f'(got {v.mode!r})'
    )


def settle_config(config: ml_collections.ConfigDict, num_frames: int) -> None:
  """Checks `config` and completes it, in place, for a clip of `num_frames` frames: the
  temporal loss compares luminance under the colour controls that keep only the result's
  luminance; one frame (a still) runs as 'independent'; 'sequential' and 'independent' run all
  the steps of the passes in their one batch per frame."""
  config_lib.validate(config)
  check_config(config)
  config.losses.temporal.luminance = config.color_control in LUMINANCE_CONTROLS
  if num_frames == 1:
    config.video.mode = 'independent'
  if config.video.mode not in PASS_MODES:
    config.schedule.num_steps *= config.video.passes
    config.schedule.coarse_steps *= config.video.passes


def plan(num_frames: int, config: ml_collections.ConfigDict) -> list[Batch]:
  """The batches of a run of `num_frames` frames (`config` settled by `settle_config`)."""
  every = tuple(range(num_frames))
  mode, passes = config.video.mode, config.video.passes
  if mode == 'independent':
    return [Batch(every, 'first', 'independent frames')]
  if mode == 'sequential':
    return [Batch((j,), 'sequential', f'frame {j + 1}/{num_frames}') for j in every]
  if mode == 'sweeps':
    batches = [Batch(every, 'first', f'pass 1/{passes}')]
    for p in range(1, passes):
      kind, order = ('forward_sweep', every) if p % 2 else ('backward_sweep', every[::-1])
      label = f'pass {p + 1}/{passes}, frame {{}}/{num_frames}'
      batches += [Batch((j,), kind, label.format(j + 1)) for j in order]
    return batches
  kinds = ['first'] + ['forward' if p % 2 else 'backward' for p in range(1, passes)]
  return [Batch(every, kind, f'pass {p + 1}/{passes}') for p, kind in enumerate(kinds)]


class BatchInputs(NamedTuple):
  """What a batch's `stylize` call receives besides the frames and the style."""

  init_images: np.ndarray | None
  guides: dict[str, np.ndarray]
  config: ml_collections.ConfigDict


def batch_inputs(
  batch: Batch,
  frames: np.ndarray,
  results: np.ndarray,
  clip: Motion | None,
  config: ml_collections.ConfigDict,
) -> BatchInputs:
  """The start images, guides and config of `batch`, from the current `results`.

  Args:
    batch: from `plan`.
    frames: (F, H, W, 3) the clip at the run's size.
    results: (F, H, W, 3) the stylized frames so far (the previous pass's, or in sequential
      mode the frames done, in order).
    clip: the clip's motion (None for 'first' batches).
    config: settled by `settle_config`.
  """
  index = list(batch.frames)
  if batch.kind == 'first':
    return BatchInputs(None, idle_guides(frames[index]), config)
  if batch.kind == 'sequential':
    (j,) = index
    if j == 0:
      return batch_inputs(Batch(batch.frames, 'first', batch.label), frames, results, clip, config)
    target, certainty = neighbour(results, clip, j, forward=True)
    start = certainty * target + (1.0 - certainty) * frames[index]
    targets = [(1, target, certainty)]
    for k, to_back, from_back in clip.long_term:
      if k <= j:
        warped = _warp(results[j - k : j - k + 1], to_back[j : j + 1])
        targets.append((k, warped, from_back[j : j + 1]))
    weights = motion.long_term_certainties(jnp.stack([c for _, _, c in targets]))
    guides = {}
    for (k, warped, _), weight in zip(targets, weights, strict=True):
      guides.update(_guides(warped, weight, k))
  elif batch.kind.endswith('_sweep'):
    (j,) = index
    warped, certainty = neighbour(results, clip, j, forward=batch.kind == 'forward_sweep')
    start = motion.blend(results[index], warped, certainty, config.video.blend)
    guides = _guides(warped if config.video.temporal_target == 'warped' else start, certainty)
  else:
    forward = batch.kind == 'forward'
    if config.video.propagate:
      start, warped, certainty = propagated(results, clip, forward, config.video.blend)
    else:
      warped, certainty = neighbours(results, clip, forward)
      start = motion.blend(results, warped, certainty, config.video.blend)
    guides = _guides(warped if config.video.temporal_target == 'warped' else start, certainty)
  if config.color_control == 'luminance_only':  # The optimised image is grey there.
    start = jax.vmap(color.to_luminance_rgb)(start)
  later = ml_collections.ConfigDict(config.to_dict())
  later.init.kind, later.init.noise = 'image', 0.0
  return BatchInputs(np.asarray(start), guides, later)


def idle_guides(frames: np.ndarray) -> dict[str, np.ndarray]:
  """The temporal guides of (F, H, W, 3) frames with no neighbour yet: certainty 0 everywhere,
  so the temporal term is 0 (a first pass, or a still)."""
  return _guides(frames, np.zeros((*frames.shape[:-1], 1), np.float32))


def _guides(target: Any, certainty: Any, offset: int = 1) -> dict[str, np.ndarray]:
  previous, certain = temporal.guide_names(offset)
  return {
    previous: np.asarray(jnp.clip(target, 0.0, 1.0), np.float32),
    certain: np.asarray(certainty, np.float32),
  }


def fit_frames(frames: Any, image_size: int) -> np.ndarray:
  """(F, H, W, 3) frames fitted to `image_size` on their longest side (nst_jax's one rule)."""
  frames = np.asarray(frames, np.float32)
  if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
    raise ConfigError(f'frames must be (F, H, W, 3) floats in [0, 1], got shape {frames.shape}')
  return np.asarray(resample.resize(frames, resample.fit_size(frames.shape[1:3], image_size)))


@dataclasses.dataclass
class VideoRun:
  """A video run's state between batches: the clip, its motion, the plan and the results.

  `run.inputs(b)` gives batch b's inputs, `run.done(b, images)` records its results; the
  frames are `run.results`. `stylize_video` and the script's command both drive it.
  """

  frames: np.ndarray
  config: ml_collections.ConfigDict
  clip: Motion | None
  batches: list[Batch]
  results: np.ndarray

  @classmethod
  def create(cls, frames: Any, config: ml_collections.ConfigDict) -> 'VideoRun':
    """Fits the frames, settles `config` in place (`settle_config`) and estimates the motion
    (on the host)."""
    frames = fit_frames(frames, config.image_size)
    settle_config(config, len(frames))
    needs_motion = config.video.mode != 'independent'
    clip = None
    if needs_motion:
      v = config.video
      clip = estimate_motion(frames, v.flow_preset, tuple(v.long_term), v.color_tolerance)
    return cls(frames, config, clip, plan(len(frames), config), frames.copy())

  def inputs(self, b: int) -> BatchInputs:
    return batch_inputs(self.batches[b], self.frames, self.results, self.clip, self.config)

  def done(self, b: int, images: np.ndarray) -> None:
    self.results[list(self.batches[b].frames)] = np.asarray(images, np.float32)


def stylize_video(
  frames: Any,
  style: Any,
  config: ml_collections.ConfigDict,
  *,
  network: tuple[Any, Any] | None = None,
  callback: Callable[[str, Progress], None] | None = None,
) -> np.ndarray:
  """Stylizes a clip without flicker (see the module docstring for the modes).

  Args:
    frames: (F, H, W, 3) floats in [0, 1]; fitted to `config.image_size`.
    style: (Hs, Ws, 3) the style image in [0, 1].
    config: with its `video` group (configs/video.py); `losses.temporal.weight` > 0 for the
      temporal loss.
    network: `(VGG19, params)`, default the config's weights.
    callback: called with the batch's label ('pass 2/4') and a `Progress` after each chunk.

  Returns:
    (F, H, W, 3) float32 in [0, 1], the stylized frames.

  Raises:
    ConfigError, ImageError: bad settings or inputs, before any optimisation.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  run = VideoRun.create(frames, config)
  if network is None:
    network = weights.load_vgg19(
      config.network.weights,
      pooling=config.network.pooling,
      dtype=jnp.dtype(config.network.dtype),
    )
  for b, batch in enumerate(run.batches):
    given = run.inputs(b)
    report = None if callback is None else (lambda p, label=batch.label: callback(label, p))
    result = engine.stylize(
      run.frames[list(batch.frames)],
      [style],
      given.config,
      init_images=given.init_images,
      guides=given.guides,
      network=network,
      callback=report,
    )
    run.done(b, result.images)
  return run.results
