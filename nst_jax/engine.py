"""The stylization loop: one compiled, vmapped, sharded optax program for a batch of pairs.

For each scale of the coarse-to-fine ladder, targets are computed once per (content, styles)
pair; then one jitted function runs up to `config.chunk_size` optimizer steps in a compiled loop
(`lax.fori_loop`, whose trip count is the steps left, so no step is wasted) for all pairs (the
pair axis is sharded over a device mesh; each device's pairs are vmapped, all at once or in
groups, `config.pair_group_size`), and is called again for each further chunk without retracing.
Between chunks, progress is reported and the loss is checked for non-finite values. Equal
settings reuse the compiled programs across `stylize` calls.

Pixels stay in [0, 1] by projection: each update is followed by a clip. Adam and L-BFGS both see
the projected iterate; for L-BFGS the line search's cached value and gradient (those of the point
before the clip) are reused, which is exact whenever no pixel left [0, 1] in that step.
"""

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nst_jax import color, losses, objective, vgg, weights
from nst_jax import config as config_lib
from nst_jax.errors import ConfigError, ImageError, NonFiniteLossError, StylizeInterrupted

PAIRS = 'pairs'  # Name of the mesh axis that the pair axis is sharded over.


@dataclasses.dataclass
class History:
  """Loss values of a run, all scales concatenated.

  Attributes:
    total: (num_steps_all, B) the objective before each step.
    scale: (num_steps_all,) the scale index (0 = coarsest) of each step.
    term_steps: (K,) steps done (all scales) when the terms were evaluated: every chunk's end,
      so the last entry is the final image.
    terms: `{name: (K, B)}` unweighted value of each loss term.
    term_totals: (K, B) the objective at those same points.
  """

  total: np.ndarray
  scale: np.ndarray
  term_steps: np.ndarray
  terms: dict[str, np.ndarray]
  term_totals: np.ndarray


class StylizeResult(NamedTuple):
  """images: (B, H, W, 3) float32 in [0, 1]; history: the losses over the run."""

  images: np.ndarray
  history: History


class Progress(NamedTuple):
  """What a progress callback receives between chunks.

  Attributes:
    scale: index of the current scale (0 = coarsest); num_scales: how many there are.
    step: steps done at this scale; num_steps: steps this scale runs.
    total: (B,) objective of the current images; terms: `{name: (B,)}` unweighted term values.
    images: (B, h, w, 3) current images at this scale (the iterate average, if enabled).
  """

  scale: int
  num_scales: int
  step: int
  num_steps: int
  total: np.ndarray
  terms: dict[str, np.ndarray]
  images: jax.Array


class _LoopState(NamedTuple):
  images: jax.Array  # (B, h, w, 3) current iterates.
  opt_state: Any  # optax state, every leaf with a leading B axis.
  average: jax.Array  # (B, h, w, 3) exponential moving average of the iterates.
  last_finite: jax.Array  # (B, h, w, 3) latest iterate whose objective was finite.
  first_bad: jax.Array  # (B, h, w, 3) first iterate whose objective was not finite.
  failed: jax.Array  # (B,) bool, whether any objective was non-finite.
  step: jax.Array  # () int32, steps done at this scale.


def _memoized(builder: Callable[..., Any]) -> Callable[..., Any]:
  """`builder` with its results kept for equal arguments (the 8 latest), so that `stylize` calls
  with the same network, terms and settings reuse one traced and compiled program. Arguments that
  cannot be hashed (a user's term holding an array, say) are built afresh each time."""
  cached = functools.lru_cache(maxsize=8)(builder)

  @functools.wraps(builder)
  def build(*args):
    try:
      hash(args)
    except TypeError:
      return builder(*args)
    return cached(*args)

  build.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
  return build


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimizer named by `config.optimizer`: optax L-BFGS with zoom line search, or Adam.

  Equal settings give the same object, so that repeated `stylize` calls reuse their compilation.
  """
  return _optimizer(config.optimizer, float(config.learning_rate), int(config.lbfgs_memory))


@functools.lru_cache(maxsize=8)
def _optimizer(name: str, learning_rate: float, lbfgs_memory: int) -> optax.GradientTransformation:
  if name == 'lbfgs':
    return optax.lbfgs(memory_size=lbfgs_memory)
  if name == 'adam':
    return optax.adam(learning_rate)
  raise ConfigError(f'config.optimizer={name!r} is not one of: lbfgs, adam')


def scale_sizes(shape: tuple[int, int], config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """(height, width) of each scale, coarsest first; the last has longest side `image_size`."""
  height, width = shape
  sizes = []
  for k in reversed(range(config.num_scales)):
    side = config.image_size / config.scale_ratio**k
    factor = side / max(height, width)
    sizes.append((max(1, round(height * factor)), max(1, round(width * factor))))
  return sizes


def steps_per_scale(config: ml_collections.ConfigDict) -> list[int]:
  """Optimizer steps at each scale, coarsest first."""
  coarse = config.coarse_steps or config.num_steps
  return [coarse] * (config.num_scales - 1) + [config.num_steps]


def style_size(
  style_shape: tuple[int, int], content_size: tuple[int, int], config: ml_collections.ConfigDict
) -> tuple[int, int]:
  """(height, width) a style image is resized to for content of `content_size`."""
  side = config.style_size or config.style_scale * max(content_size)
  factor = side / max(style_shape)
  return max(1, round(style_shape[0] * factor)), max(1, round(style_shape[1] * factor))


def resize(image: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Antialiased bilinear resize of (..., H, W, 3) images in [0, 1] to (..., *size, 3)."""
  if tuple(image.shape[-3:-1]) == tuple(size):
    return image
  shape = (*image.shape[:-3], *size, image.shape[-1])
  return jnp.clip(jax.image.resize(image, shape, 'linear', antialias=True), 0.0, 1.0)


def stylize(
  contents: Any,
  styles: Sequence[Any],
  config: ml_collections.ConfigDict | None = None,
  *,
  style_weights: Any = None,
  init_images: Any = None,
  terms: Mapping[str, objective.LossTerm] | None = None,
  optimizer: optax.GradientTransformation | None = None,
  network: tuple[vgg.VGG19, Any] | None = None,
  callback: Callable[[Progress], None] | None = None,
) -> StylizeResult:
  """Stylizes a batch of content images, each with its own blend of the style images.

  Args:
    contents: (B, H, W, 3) floats in [0, 1], any size: resized so the longest side is
      `config.image_size` (aspect ratio kept).
    styles: S style images, each (Hs, Ws, 3) in [0, 1], sizes may differ.
    config: settings, see `nst_jax.config.default_config` (the default if None).
    style_weights: (B, S) or (S,) non-negative blend weights of the styles for each pair. If
      None: pair i uses style i when S == B, else every pair blends all styles equally.
    init_images: (B, H', W', 3) start images for `config.init == 'image'` (resized).
    terms: the objective, `{name: LossTerm}`; default `objective.terms_from_config(config)`.
    optimizer: any optax transformation, overriding `config.optimizer`.
    network: `(VGG19 module, params)`, default `weights.load_vgg19` for `config.weights`.
    callback: called with a `Progress` after each chunk.

  Returns:
    `StylizeResult(images (B, H, W, 3) in [0, 1], history)`.

  Raises:
    ConfigError, ImageError: invalid settings or inputs, before anything is compiled.
    NonFiniteLossError: a loss went non-finite; it names the term and holds the last finite images.
    StylizeInterrupted: on KeyboardInterrupt; it holds the current images.
  """
  config = config_lib.default_config() if config is None else config
  config_lib.validate(config)
  contents = _check_images(contents, 'contents')
  styles = [_check_images(s, f'styles[{i}]', batched=False) for i, s in enumerate(styles)]
  num_pairs = contents.shape[0]
  blend = _style_weights(style_weights, num_pairs, len(styles))
  terms = dict(objective.terms_from_config(config) if terms is None else terms)
  objective.check_terms(terms)
  terms = {name: term for name, term in terms.items() if term.weight > 0}
  layers = tuple(sorted({layer for t in terms.values() for layer in t.layers}, key=_depth))
  if layers:
    vgg.check_layer_names(layers)
  sizes = scale_sizes(contents.shape[1:3], config)
  _check_sizes(sizes, styles, layers, config)
  if config.init == 'image':
    if init_images is None:
      raise ConfigError("config.init='image' needs init_images")
    init_images = _check_images(init_images, 'init_images')
    if init_images.shape[0] != num_pairs:
      raise ConfigError(f'init_images has {init_images.shape[0]} images for {num_pairs} pairs')
  layout = _PairLayout.create(num_pairs, config.num_devices)
  optimizer = make_optimizer(config) if optimizer is None else optimizer
  model, params = network or weights.load_vgg19(
    config.weights, pooling=config.pooling, dtype=jnp.dtype(config.dtype)
  )

  # Colour control acting on the inputs; styles then become per pair.
  pair_styles = _pair_styles(contents, styles, blend, config.color_control)
  if config.color_control == 'luminance_only':
    contents = jax.vmap(color.to_luminance_rgb)(contents)

  # Weights are arguments of the compiled programs, not constants in them: a sweep over weights
  # compiles once. The programs are built from the terms without their weights.
  term_fns = tuple((name, term._replace(weight=1.0)) for name, term in terms.items())
  run_chunk = _make_chunk_runner(
    model,
    term_fns,
    layers,
    optimizer,
    config.normalize_terms,
    config.ema_decay,
    config.chunk_size,
    layout.pair_groups(config.pair_group_size),
  )
  target_fn = _make_target_fn(model, term_fns, layers)
  start_state = _start_state_fn(optimizer)
  params = layout.replicate(params)
  term_weights = layout.replicate({name: np.float32(term.weight) for name, term in terms.items()})
  key = jax.random.key(config.seed)

  totals, scale_ids, term_steps, term_values, term_totals = [], [], [], [], []
  images = None  # Global (padded, sharded) images of the previous scale.
  for scale, size in enumerate(sizes):
    content = resize(contents, size)
    targets = layout.shard(target_fn(params, content, pair_styles, config, size))
    if images is None:
      first = sum(layout.counts[: jax.process_index()])
      start = _initial_images(content, pair_styles, init_images, key, size, config, first)
      images = layout.shard(start)
    else:
      images = _resize_jit(images, size)
    # A fresh optimizer state at each scale: its shapes follow the image size.
    state = start_state(images)
    num_steps = steps_per_scale(config)[scale]
    done = 0
    try:
      while done < num_steps:
        state, chunk_totals, values = run_chunk(
          params, state, targets, term_weights, jnp.int32(num_steps)
        )
        count = min(config.chunk_size, num_steps - done)
        totals.append(layout.gather(chunk_totals, axis=1)[:count])
        end_total, values = (
          layout.gather(values[0]),
          {n: layout.gather(v) for n, v in values[1].items()},
        )
        term_values.append(values)
        term_totals.append(end_total)
        scale_ids.append(np.full(count, scale))
        term_steps.append(sum(map(len, totals)))
        done += count
        if layout.gather(state.failed).any():
          raise _non_finite_error(model, params, terms, layers, state, targets, layout, scale)
        if callback is not None:
          current = layout.gather(state.average if config.ema_decay else state.images)
          callback(Progress(scale, len(sizes), done, num_steps, end_total, values, current))
    except KeyboardInterrupt:
      current = state.average if config.ema_decay else state.images
      raise StylizeInterrupted(layout.gather(current, local=True), scale, done) from None
    images = state.average if config.ema_decay else state.images

  if config.color_control in ('preserve_colors', 'luminance_only'):
    originals = layout.shard(resize(pair_styles.originals, sizes[-1]))
    images = _preserve_colors_jit(images, originals)
  history = History(
    total=np.concatenate(totals),
    scale=np.concatenate(scale_ids),
    term_steps=np.asarray(term_steps),
    terms={name: np.stack([v[name] for v in term_values]) for name in terms},
    term_totals=np.stack(term_totals),
  )
  return StylizeResult(layout.gather(images).astype(np.float32), history)


_resize_jit = jax.jit(resize, static_argnums=1)
_preserve_colors_jit = jax.jit(jax.vmap(color.preserve_colors))


@_memoized
def _start_state_fn(optimizer: optax.GradientTransformation) -> Callable[[jax.Array], _LoopState]:
  return jax.jit(functools.partial(_start_state, optimizer))


def _start_state(optimizer: optax.GradientTransformation, images: jax.Array) -> _LoopState:
  return _LoopState(
    images=images,
    opt_state=jax.vmap(optimizer.init)(images),
    average=images,
    last_finite=images,
    first_bad=images,
    failed=jnp.zeros(images.shape[0], bool),
    step=jnp.zeros((), jnp.int32),
  )


class _PairLayout(NamedTuple):
  """Where the pairs live: each process's pairs, padded to `local_size`, sharded over `mesh`.

  In a multi-process run (`jax.distributed`), each process passes its own pairs; their global
  order is process 0's, then process 1's, and so on.
  """

  mesh: Mesh
  counts: tuple[int, ...]  # Real pairs of each process.
  local_size: int  # Pairs per process after padding (a multiple of its devices in the mesh).

  @classmethod
  def create(cls, num_local: int, num_devices: int) -> '_PairLayout':
    if jax.process_count() == 1:
      mesh = _make_mesh(num_local, num_devices)
      return cls(mesh, (num_local,), mesh.size * math.ceil(num_local / mesh.size))
    if num_devices not in (0, jax.device_count()):
      raise ConfigError(
        f'config.num_devices={num_devices}: a multi-process run uses all '
        f'{jax.device_count()} devices (set 0)'
      )
    counts = multihost_utils.process_allgather(np.int32(num_local))
    local_devices = jax.local_device_count()
    mesh = Mesh(np.asarray(jax.devices()), (PAIRS,))
    return cls(
      mesh, tuple(map(int, counts)), local_devices * math.ceil(max(counts) / local_devices)
    )

  def shard(self, tree: Any) -> Any:
    """This process's pairs (leading axis) padded and sharded; scalars replicated."""
    pairs, replicated = NamedSharding(self.mesh, P(PAIRS)), NamedSharding(self.mesh, P())

    def place(x):
      x = np.asarray(x) if jax.process_count() > 1 else jnp.asarray(x)
      if x.ndim == 0:
        return jax.make_array_from_process_local_data(replicated, x)
      if x.shape[0] < self.local_size:  # Pad by repeating the last pair.
        x = jnp.concatenate([x, jnp.repeat(x[-1:], self.local_size - x.shape[0], axis=0)])
      return jax.make_array_from_process_local_data(pairs, x)

    return jax.tree.map(place, tree)

  def pair_groups(self, group_size: int) -> '_PairGroups':
    """How the pairs of each device are grouped for `group_size` (see `config.pair_group_size`)."""
    per_device = self.local_size * len(self.counts) // self.mesh.size
    if not group_size:
      group_size = 1 if self.mesh.devices.flat[0].platform == 'cpu' else per_device
    # The largest group size that divides the device's pairs, so that every group is full.
    size = max(d for d in range(1, min(group_size, per_device) + 1) if per_device % d == 0)
    return _PairGroups(self.mesh, size)

  def replicate(self, tree: Any) -> Any:
    sharding = NamedSharding(self.mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)

  def gather(self, x: jax.Array, axis: int = 0, local: bool = False) -> np.ndarray:
    """The real pairs of a sharded array on the host: every process's, or only this one's."""
    x = jnp.moveaxis(x, axis, 0) if axis else x
    if jax.process_count() == 1:
      full = np.asarray(x)[: self.counts[0]]
    elif local:
      shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
      full = np.concatenate([np.asarray(s.data) for s in shards])[
        : self.counts[jax.process_index()]
      ]
    else:
      full = multihost_utils.process_allgather(x, tiled=True)
      full = full.reshape(len(self.counts), self.local_size, *full.shape[1:])
      full = np.concatenate([full[p, :count] for p, count in enumerate(self.counts)])
    return np.moveaxis(full, 0, axis) if axis else full


class _PairGroups(NamedTuple):
  """The pair axis, sharded over `mesh`, in groups of `size` pairs on every device."""

  mesh: Mesh  # The pair axis is sharded over its devices, in contiguous blocks.
  size: int  # Pairs per group (dividing each device's pairs); groups run one after another.

  def map(self, fn: Callable[..., Any], *args: Any) -> Any:
    """`jax.vmap(fn)(*args)` over the leading (pair) axis of `args`, computed group by group.

    Each device maps over its own pairs (`shard_map`), so nothing moves between devices; groups of
    one pair are not vmapped at all, so that `lax.cond`s in `fn` stay conditional.
    """
    per_device = jax.tree.leaves(args)[0].shape[0] // self.mesh.size
    if 1 < per_device <= self.size:  # One group: all pairs at once.
      return jax.vmap(fn)(*args)

    def local(*local_args):
      if per_device == 1:
        out = fn(*jax.tree.map(lambda x: x[0], local_args))
        return jax.tree.map(lambda y: y[None], out)
      if self.size == 1:
        return jax.lax.map(lambda a: fn(*a), local_args)
      split = lambda x: x.reshape(-1, self.size, *x.shape[1:])  # noqa: E731
      out = jax.lax.map(lambda a: jax.vmap(fn)(*a), jax.tree.map(split, local_args))
      return jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:]), out)

    if self.mesh.size == 1:
      return local(*args)
    specs = tuple(P(PAIRS) for _ in args)
    # No replication checks: every value is per pair, and optax's line search trips them.
    mapped = jax.shard_map(
      local, mesh=self.mesh, in_specs=specs, out_specs=P(PAIRS), check_vma=False
    )
    return mapped(*args)


class _PairStyles(NamedTuple):
  """The inputs after colour control: per-pair style images (shared where possible)."""

  originals: jax.Array  # (B, H, W, 3) content images before any colour control.
  images: list[list[jax.Array]]  # For each pair, its style images with a positive weight.
  weights: list[tuple[float, ...]]  # For each pair, those styles' blend weights.
  ids: list[list[Any]]  # For each pair, a key per style image: equal keys, equal images.


def _pair_styles(
  contents: jax.Array, styles: list[jax.Array], blend: np.ndarray, color_control: str
) -> _PairStyles:
  images, weights_, ids = [], [], []
  for b, row in enumerate(blend):
    used = [s for s in range(len(styles)) if row[s] > 0]
    weights_.append(tuple(float(row[s]) for s in used))
    if color_control == 'match_style':
      images.append([color.match_color(styles[s], contents[b]) for s in used])
      ids.append([(s, b) for s in used])
    elif color_control == 'luminance_only':
      content_luminance = color.luminance(contents[b])
      images.append(
        [color.match_luminance(color.to_luminance_rgb(styles[s]), content_luminance) for s in used]
      )
      ids.append([(s, b) for s in used])
    else:
      images.append([styles[s] for s in used])
      ids.append([(s,) for s in used])
  return _PairStyles(contents, images, weights_, ids)


@_memoized
def _make_target_fn(model: vgg.VGG19, term_fns: tuple[tuple[str, objective.LossTerm], ...], layers):
  """Returns `targets(params, contents, pair_styles, config, size)`: stacked per-pair targets."""
  terms = dict(term_fns)
  features = jax.jit(functools.partial(_features, model, layers=layers))

  @functools.partial(jax.jit, static_argnums=2)
  def pair_targets(content, styles, blend):
    return objective.compute_targets(terms, content, styles, blend)

  def targets(params, contents, pair_styles: _PairStyles, config, size):
    content_features = features(params, contents)
    cache: dict[Any, Any] = {}
    per_pair = []
    for b in range(contents.shape[0]):
      style_features = []
      for key, image in zip(pair_styles.ids[b], pair_styles.images[b], strict=True):
        if key not in cache:
          image = resize(image, style_size(image.shape[:2], size, config))
          cache[key] = jax.tree.map(lambda x: x[0], features(params, image[None]))
        style_features.append(cache[key])
      content_b = jax.tree.map(lambda x, b=b: x[b], content_features)
      per_pair.append(pair_targets(content_b, style_features, pair_styles.weights[b]))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *per_pair)

  return targets


def _features(model: vgg.VGG19, params, images: jax.Array, layers) -> dict[str, jax.Array]:
  """`{'image': images, layer: float32 activation}` for (N, H, W, 3) images."""
  out = model.apply(params, images, layers) if layers else {}
  return {'image': images, **{k: v.astype(jnp.float32) for k, v in out.items()}}


def _term_values(model, terms, layers, params, image, targets) -> dict[str, jax.Array]:
  """`{name: value}` of the (unweighted) terms for one image (h, w, 3)."""
  features = jax.tree.map(lambda x: x[0], _features(model, params, image[None], layers))
  return objective.evaluate(terms, features, targets)


def _objective_fn(model, terms, layers, normalize: bool):
  """`objective(params, image, targets, weights) -> (total, values)` for one example."""

  def objective_fn(params, image, targets, weights_):
    values = _term_values(model, terms, layers, params, image, targets)
    if normalize:
      total = losses.log_combine_terms(values, weights_)
    else:
      total = losses.combine_terms(values, weights_, normalize=False)
    return total, values

  return objective_fn


@_memoized
def _make_chunk_runner(model, term_fns, layers, optimizer, normalize, decay, chunk_size, groups):
  """The jitted `run_chunk(params, state, targets, weights, num_steps) -> (state, totals, values)`.

  The pairs' objectives and gradients are computed in `groups` (a `_PairGroups`).

  `weights` are the terms' `{name: weight}`. `values` are `(total, {name: term})` at the chunk's
  last iterate; `totals` (chunk_size, B) the objective before each step, NaN for steps past
  `num_steps` (which are skipped, so that one compiled function serves every chunk and any step
  count).
  """
  objective_fn = _objective_fn(model, dict(term_fns), layers, normalize)

  def step(params, state: _LoopState, targets, weights_) -> tuple[_LoopState, jax.Array]:
    def value_fn_for(target):
      return lambda image: objective_fn(params, image, target, weights_)[0]

    def value_and_grad(images, targets):
      return groups.map(lambda x, t: jax.value_and_grad(value_fn_for(t))(x), images, targets)

    cached = optax.tree_utils.tree_get(state.opt_state, 'value')
    if cached is None:
      value, grad = value_and_grad(state.images, targets)
    else:
      # L-BFGS: its line search already evaluated this point. Decided once for the batch (a
      # vmapped `lax.cond` would compute both branches).
      cached_grad = optax.tree_utils.tree_get(state.opt_state, 'grad')
      value, grad = jax.lax.cond(
        jnp.isinf(cached).any(),
        lambda: value_and_grad(state.images, targets),
        lambda: (cached, cached_grad),
      )

    def update(g, s, x, v, t):
      updates, s = optimizer.update(g, s, x, value=v, grad=g, value_fn=value_fn_for(t))
      return jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0), s

    operands = (grad, state.opt_state, state.images, value, targets)
    if cached is None:
      images, opt_state = jax.vmap(update)(*operands)
    else:
      # L-BFGS: one pair at a time, so that the line search's `lax.cond`s stay conds; vmapped
      # (a per-pair predicate) each would evaluate the objective in both of its branches.
      images, opt_state = groups._replace(size=1).map(update, *operands)
    finite = jnp.isfinite(value) & jnp.isfinite(grad).all(axis=(1, 2, 3))
    newly_bad = ~finite & ~state.failed
    keep = finite[:, None, None, None]
    return (
      _LoopState(
        images=images,
        opt_state=opt_state,
        average=decay * state.average + (1.0 - decay) * images,
        last_finite=jnp.where(keep, state.images, state.last_finite),
        first_bad=jnp.where(newly_bad[:, None, None, None], state.images, state.first_bad),
        failed=state.failed | ~finite,
        step=state.step + 1,
      ),
      value,
    )

  @jax.jit
  def run_chunk(params, state: _LoopState, targets, weights_, num_steps):
    # A loop over only the steps left, rather than a scan of `lax.cond`s: XLA hoists the
    # loop-invariant work (the transposed conv kernels) out of a loop but not out of a cond.
    count = jnp.clip(num_steps - state.step, 0, chunk_size)
    totals = jnp.full((chunk_size, state.images.shape[0]), jnp.nan, jnp.float32)

    def body(i, carry):
      state, totals = carry
      state, value = step(params, state, targets, weights_)
      return state, totals.at[i].set(value)

    state, totals = jax.lax.fori_loop(0, count, body, (state, totals))
    values = groups.map(lambda x, t: objective_fn(params, x, t, weights_), state.images, targets)
    return state, totals, values

  return run_chunk


@contextlib.contextmanager
def capture_chunk_runner() -> Iterator[dict[str, Any]]:
  """For benchmarks and tests: records what `stylize` calls build inside the block.

  Yields a dict that receives `run_chunk` (the jitted chunk function), `make_args` (the arguments
  of `_make_chunk_runner`) and `call_args` (those of the first `run_chunk` call).
  """
  global _make_chunk_runner
  captured: dict[str, Any] = {}
  original = _make_chunk_runner

  def make_chunk_runner(*args):
    run_chunk = original(*args)
    captured.update(make_args=args, run_chunk=run_chunk)

    def run(*call_args):
      captured.setdefault('call_args', call_args)
      return run_chunk(*call_args)

    return run

  _make_chunk_runner = make_chunk_runner
  try:
    yield captured
  finally:
    _make_chunk_runner = original


def _evaluate_terms(model, params, terms, layers, images, targets):
  """`{name: (B,)}` unweighted term values of `images` (B, h, w, 3)."""
  values = jax.vmap(lambda x, t: _term_values(model, terms, layers, params, x, t))
  return jax.jit(values)(images, targets)


def _non_finite_error(model, params, terms, layers, state, targets, layout, scale):
  failed = np.flatnonzero(layout.gather(state.failed))
  values = _evaluate_terms(model, params, terms, layers, state.first_bad, targets)
  bad_terms = [
    name for name, v in values.items() if not np.isfinite(layout.gather(v)[failed]).all()
  ]
  what = f'loss term {", ".join(map(repr, bad_terms))}' if bad_terms else 'the gradient'
  return NonFiniteLossError(
    f'{what} became non-finite (NaN or inf) for pair(s) {failed.tolist()} at scale {scale}; '
    'stopped, keeping the last finite images',
    images=layout.gather(state.last_finite),
    terms=tuple(bad_terms),
  )


def _initial_images(content, pair_styles, init_images, key, size, config, first) -> jax.Array:
  """Start images of this process's pairs; `first` is the global index of its first pair."""
  keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(first + jnp.arange(content.shape[0]))
  if config.init == 'noise':
    return jax.vmap(lambda k: jax.random.uniform(k, (*size, 3)))(keys)
  if config.init == 'style_colors':
    noise = jax.vmap(lambda k: jax.random.normal(k, (*size, 3)))(keys)
    pairs = zip(pair_styles.images, pair_styles.weights, strict=True)
    dominant = [images[int(np.argmax(w))] for images, w in pairs]
    start = jnp.stack([color.match_color(n, s) for n, s in zip(noise, dominant, strict=True)])
  elif config.init == 'image':
    start = resize(jnp.asarray(init_images), size)
  else:
    start = content
  if config.init_noise:
    noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), (*size, 3)))(keys)
    start = start + config.init_noise * noise
  return jnp.clip(start, 0.0, 1.0)


def _make_mesh(num_pairs: int, num_devices: int) -> Mesh:
  devices = jax.devices()
  if num_devices > len(devices):
    raise ConfigError(
      f'config.num_devices={num_devices} but only {len(devices)} device(s) are available'
    )
  if num_devices and num_pairs % num_devices:
    raise ConfigError(
      f'a batch of {num_pairs} pairs cannot be split evenly over config.num_devices='
      f'{num_devices} devices; use a multiple of {num_devices} pairs or num_devices=0 (pads)'
    )
  count = num_devices or min(len(devices), num_pairs)
  return Mesh(np.asarray(devices[:count]), (PAIRS,))


def _style_weights(style_weights: Any, num_pairs: int, num_styles: int) -> np.ndarray:
  if num_styles == 0:
    return np.zeros((num_pairs, 0))
  if style_weights is None:
    if num_styles == num_pairs:
      return np.eye(num_pairs)
    return np.ones((num_pairs, num_styles))
  w = np.asarray(style_weights, np.float64)
  if w.ndim == 1:
    w = np.broadcast_to(w, (num_pairs, w.shape[0]))
  if w.shape != (num_pairs, num_styles):
    raise ConfigError(
      f'style weights have shape {w.shape}; expected ({num_styles},) or '
      f'({num_pairs}, {num_styles}) for {num_pairs} pair(s) and {num_styles} style(s)'
    )
  if not np.isfinite(w).all() or (w < 0).any():
    raise ConfigError(f'style weights must be finite and >= 0, got {w.tolist()}')
  if (w.sum(axis=1) <= 0).any():
    raise ConfigError(f'every pair needs a positive style weight, got {w.tolist()}')
  return w


def _check_images(images: Any, name: str, *, batched: bool = True) -> jax.Array:
  array = jnp.asarray(images)
  ndim = 4 if batched else 3
  if array.ndim != ndim or array.shape[-1] != 3 or 0 in array.shape:
    shape = '(B, H, W, 3)' if batched else '(H, W, 3)'
    raise ImageError(f'{name} must be RGB images of shape {shape}, got shape {array.shape}')
  if not jnp.issubdtype(array.dtype, jnp.floating):
    raise ImageError(f'{name} must be floats in [0, 1], got dtype {array.dtype}')
  return array.astype(jnp.float32)


def _depth(layer: str) -> int:
  return vgg.LAYER_NAMES.index(layer)


def _check_sizes(sizes, styles, layers, config) -> None:
  if not layers:
    return
  stride = vgg.layer_stride(layers[-1])
  smallest = min(min(size) for size in sizes)
  if smallest < stride:
    raise ImageError(
      f'the image is {smallest} px on its short side at the coarsest scale, too small for '
      f'layer {layers[-1]} (needs at least {stride} px); raise config.image_size'
    )
  for i, style in enumerate(styles):
    for size in sizes:
      shape = style_size(style.shape[:2], size, config)
      if min(shape) < stride:
        raise ImageError(
          f'style image {i} is {min(shape)} px on its short side at {size[0]}x{size[1]}, too '
          f'small for layer {layers[-1]} (needs at least {stride} px); raise config.style_scale'
        )
