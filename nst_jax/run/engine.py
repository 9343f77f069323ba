"""The stylization loop: `stylize` a batch of (content, styles) pairs, coarse to fine.

`prepare` checks the inputs and settings (before anything is compiled), fits the images to the
final size (`resample.resize`), applies colour control, lays the pairs out on the devices
(`pairs`), checks that the run fits in memory (`memory.plan`: remat and tiles, chosen or checked)
and picks the compiled `Program`. `Stylization.run` then, at each scale of the ladder,
computes every pair's targets once, starts the optimizer, and calls the program's chunk until
the scale's steps are done, reporting progress and checking for non-finite losses in between.

    result = engine.prepare(contents, styles, config).run()   # what nst_jax.stylize does
    engine.prepare(...).program.run_chunk                      # the compiled chunk
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from nst_jax.core import objective, resample, vgg
from nst_jax.core.terms import LossTerm, check_terms, layers_of, terms_from_config
from nst_jax.errors import ConfigError, NonFiniteLossError, StylizeInterrupted
from nst_jax.io import heap, weights
from nst_jax.run import buckets, inputs, memory, regions, resume, schedule, tiles
from nst_jax.run import config as config_lib
from nst_jax.run import targets as targets_lib
from nst_jax.run.history import HistoryLog, Progress, StylizeResult
from nst_jax.run.optimizers import Optimizer, as_optimizer, make_optimizer, parametrization
from nst_jax.run.pairs import PairLayout
from nst_jax.run.program import LoopState, Program, ProgramSpec, build_program

# Folded into the seed for the loss terms' keys, so that they differ from the start noise's.
_LOSS_KEYS = 1


def stylize(
  contents: Any,
  styles: Sequence[Any],
  config: ml_collections.ConfigDict | None = None,
  *,
  callback: Callable[[Progress], None] | None = None,
  checkpoints: Any = None,
  **options: Any,
) -> StylizeResult:
  """Stylizes a batch of content images, each with its own blend of the style images.

  `prepare(contents, styles, config, **options).run(callback, checkpoints)`; `options` are
  style_weights, init_images, guides, style_guides, terms, pair_weights, optimizer, network.

  Args:
    contents: (B, H, W, 3) floats in [0, 1], any size: resized so the longest side is
      `config.image_size` (aspect ratio kept); or B such (H_i, W_i, 3) (`nst_jax.run.buckets`).
    styles: S style images, each (Hs, Ws, 3) in [0, 1], sizes may differ.
    config: settings, see `nst_jax.run.config.default_config` (the default if None).
    style_weights: (B, S) or (S,) non-negative blend weights of the styles for each pair. If
      None: pair i uses style i when S == B, else every pair blends all styles equally.
    init_images: (B, H', W', 3) start images for `config.init.kind == 'image'` (resized).
    guides: `{name: (B, H, W, C)}` guide images in [0, 1] for each pair (masks, say), with the
      contents' height and width: fitted, resized and tiled with them, and handed to every
      term's target and loss as `features['guides']` (see `nst_jax.core.terms`). The style
      losses paint `'regions'` (B, H, W, R) region by region (`nst_jax.core.masks`; with R > 1
      and no `style_weights`, every pair uses every style; `nst_jax.run.regions`).
    style_guides: S mappings `{name: (Hs, Ws, C)}` in [0, 1], one per style image, with its
      size: `features['guides']` of that style's features in the terms' targets. A style's
      `'regions'` (Hs, Ws, R) says which of its pixels feed each region; without one, style i
      feeds region i (or every region, for one region or one style per pair).
    terms: the objective, `{name: LossTerm}`; default `terms_from_config(config)`.
    pair_weights: `{name: (B,)}` a weight per pair for some terms, in place of their own
      weight: one batch, one compiled program, and a different objective for each pair (a
      weight sweep, or different losses side by side). A term whose weight is 0 for a pair is
      skipped for it when the pairs run one at a time (its value is reported as 0).
    optimizer: an `Optimizer`, or any optax transformation (run without line-search
      shortcuts), overriding `config.optim.name`.
    network: `(VGG19 module, params)`, default `weights.load_vgg19` for `config.network.weights`.
    callback: called with a `Progress` after each chunk.
    checkpoints: a folder or a `nst_jax.run.resume.Checkpoints`: resume from the latest
      checkpoint, save them as the run goes (see `nst_jax.run.resume`). None: no files.

  Returns:
    `StylizeResult(images (B, H, W, 3) in [0, 1], history)`, images a list if sizes differ.

  Raises:
    ConfigError, ImageError: invalid settings or inputs, before anything is compiled.
    NonFiniteLossError: a loss went non-finite; it names the term and holds the last finite images.
    StylizeInterrupted: on KeyboardInterrupt; it holds the current images.
  """
  return prepare(contents, styles, config, **options).run(callback, checkpoints)


@dataclasses.dataclass(frozen=True)
class Stylization:
  """A batch ready to optimise: inputs checked, fitted and colour-controlled, program chosen.

  Attributes:
    config: the settings.
    program: the compiled functions (see `nst_jax.run.program`).
    layout: where the pairs live.
    params: the network's variables, replicated over the mesh.
    term_weights: `{term: (B,)}` each pair's weights as configured (`stylize`'s `pair_weights`,
      else the terms' own), before any normalisation (see `pair_weights`).
    contents: (B, H, W, 3) this process's contents at the final size, after colour control.
    originals: the same before colour control.
    guides: `{name: (B, H, W, C)}` this process's guides at the final size (empty: none).
    pair_styles: each pair's style images (at their final size), blend weights and guides.
    init_images: (B, H', W', 3) start images for `config.init.kind == 'image'`, else None.
    sizes: (h, w) of each scale, coarsest first.
    steps: optimizer steps of each scale.
    plan: the memory plan: remat policy, tiling and estimated peak (`nst_jax.run.memory`).
    frames: each pair's own size at each scale, where padded to `sizes` (`nst_jax.run.buckets`).
  """

  config: ml_collections.ConfigDict
  program: Program
  layout: PairLayout
  params: Any
  term_weights: dict[str, np.ndarray]
  contents: jax.Array
  originals: jax.Array
  guides: dict[str, jax.Array]
  pair_styles: inputs.PairStyles
  init_images: jax.Array | None
  sizes: list[tuple[int, int]]
  steps: list[int]
  plan: memory.Plan | None = None
  frames: buckets.Frames | None = None

  def guides_at(self, scale: int, *, shard: bool = True) -> dict[str, jax.Array]:
    """`{name: (B, h, w, C)}` the pairs' guides at `scale`, sharded unless `shard` is False."""
    guides = self.frames.guides(self.guides, scale)
    return self.layout.shard(guides) if shard else guides

  def targets(self, scale: int) -> Any:
    """Every pair's targets at `scale`, sharded."""
    size = self.sizes[scale]
    side = schedule.style_side(size, self.config)
    contents = self.frames.resize(self.contents, scale)
    guides = self.guides_at(scale, shard=False)
    batch = targets_lib.batch_targets(
      self.program.objective, self.params, contents, self.pair_styles, side, guides
    )
    return self.layout.shard(batch)

  def start_state(self, scale: int, previous: LoopState | None = None) -> LoopState:
    """The state at the start of `scale`: this scale's targets; each pair's PRNG key (seeded by
    `config.seed`, the pair's global index and the scale); the images of `previous` (the last
    scale's end) resized, else of `config.init.kind`. The optimizer state is fresh, or with
    `config.optim.warm_start` carried over from `previous` where its shape allows."""
    seed = jax.random.fold_in(jax.random.key(self.config.seed), _LOSS_KEYS)
    pairs = self.layout.first + jnp.arange(self.contents.shape[0])
    keys = jax.vmap(lambda b: jax.random.fold_in(jax.random.fold_in(seed, b), scale))(pairs)
    keys = self.layout.shard(jax.random.key_data(keys))
    targets, guides = self.targets(scale), self.guides_at(scale)
    if previous is None:
      contents = self.frames.resize(self.contents, scale)
      start = self.frames.initial_images(
        contents, self.pair_styles, self.init_images, self.config, self.layout.first
      )
      return self.program.start_state(self.layout.shard(start), targets, keys, guides)
    images = self.frames.resize(self.program.result(previous), scale, scale - 1)
    if self.config.optim.warm_start:
      return self.program.warm_start(previous, images, targets, keys, guides)
    return self.program.start_state(images, targets, keys, guides)

  def pair_weights(self, scale: int, state: LoopState) -> dict[str, jax.Array]:
    """Each pair's term weights at `scale`, `{name: (B,)}` sharded: the configured weights,
    divided with `config.normalize_losses` by the terms' reference values for the pair (see
    `nst_jax.core.objective`), evaluated with `state`'s targets."""
    weights = self.layout.shard(self.term_weights)
    if not self.config.normalize_losses:
      return weights
    styles = zip(self.pair_styles.images, self.pair_styles.weights, strict=True)
    stretched = self.frames.fit([images[int(np.argmax(w))] for images, w in styles], scale)
    ones = jax.tree.map(jnp.ones_like, weights)
    keys = self.program.step_keys(state)

    def values(images):
      return self.program.evaluate(self.params, images, state.targets, ones, keys, state.guides)[1]

    content = self.layout.shard(self.frames.resize(self.contents, scale))
    refs = objective.reference_values(values(content), values(self.layout.shard(stretched)))
    return {name: w / refs[name] for name, w in weights.items()}

  def run(
    self, callback: Callable[[Progress], None] | None = None, checkpoints: Any = None
  ) -> StylizeResult:
    """Optimises every scale in turn, from a checkpoint where there is one; see `stylize`."""
    log, first, state, resumed = HistoryLog(), 0, None, None  # state: the previous scale's end.
    checkpoints = resume.as_checkpoints(checkpoints)
    if checkpoints is not None:
      snapshot = checkpoints.restore(resume.run_fingerprint(self), self.start_state)
      if snapshot is not None:
        log, first = HistoryLog.from_json(snapshot.history), snapshot.scale + snapshot.ended
        state, resumed = (snapshot.state, None) if snapshot.ended else (None, snapshot.state)
    try:
      for scale in range(first, len(self.sizes)):
        state, resumed = self._run_scale(scale, state, log, callback, checkpoints, resumed), None
    finally:  # Every save written before the result is handed out, or the error raised.
      if checkpoints is not None:
        checkpoints.wait()
    mode = self.config.color_control
    palettes = self.layout.shard(inputs.pair_palettes(self.pair_styles)) if mode == 'nnst' else None
    images = inputs.control_result(
      self.program.result(state), self.layout.shard(self.originals), mode, palettes
    )
    images = self.layout.gather(images).astype(np.float32)
    return StylizeResult(self.frames.crop(images), log.history())

  def _run_scale(self, scale, previous, log, callback, checkpoints=None, resumed=None):
    state = self.start_state(scale, previous) if resumed is None else resumed
    # Normalised weights come from the scale's start, as in the uninterrupted run.
    fresh = resumed is not None and self.config.normalize_losses
    weights = self.pair_weights(scale, self.start_state(scale) if fresh else state)
    num_steps, offset = self.steps[scale], sum(self.steps[:scale])
    done, pending, logged = int(state.step), None, 0

    def snapshot(state: LoopState) -> None:  # `ended`: `log.end_scale` ran for this scale.
      ended = len(log.pair_steps) > scale
      checkpoints.save(resume.Snapshot(scale, offset + done, ended, state, log.to_json()))

    try:
      while True:
        logged = len(log.term_steps)
        pending = self.program.run_chunk(self.params, state, weights, jnp.int32(num_steps))
        state = pending[0]
        done, total, values = log.add_chunk(scale, done, pending, self.layout.gather)
        pending = None
        if self.layout.gather(state.failed).any():
          history = log.history(self.layout.gather(state.pair_steps))
          raise self._non_finite_error(state, weights, scale, history)
        ended = done >= num_steps or self.layout.gather(state.stopped).all()
        if ended:
          log.end_scale(self.layout.gather(state.pair_steps))
        if checkpoints is not None and (ended or checkpoints.due(offset + done)):
          snapshot(state)
        if callback is not None:
          current = self.frames.crop(self.layout.gather(self.program.result(state)), scale)
          sizes, evaluations = self._step_sizes(state), log.evaluations()
          at = (scale, len(self.sizes), done, num_steps, total, values, current, sizes)
          callback(Progress(*at, evaluations))
        if ended:
          return state
    except KeyboardInterrupt:
      if pending is not None and len(log.term_steps) == logged:  # Stopped while a chunk ran.
        state = pending[0]
        done = log.add_chunk(scale, done, pending, self.layout.gather)[0]
        if done >= num_steps and len(log.pair_steps) == scale:
          log.end_scale(self.layout.gather(state.pair_steps))
      alive = not any(x.is_deleted() for x in jax.tree.leaves(state))  # Not donated mid-call.
      if checkpoints is not None and alive and not self.layout.gather(state.failed).any():
        snapshot(state)
        checkpoints.wait()
      current = self.layout.gather(self.program.result(state), local=True)
      history = log.history(
        None if len(log.pair_steps) > scale else self._steps_so_far(state, done)
      )
      raise StylizeInterrupted(self.frames.crop(current, scale), scale, done, history) from None

  def _steps_so_far(self, state: LoopState, done: int) -> np.ndarray:
    """(B,) each pair's steps at an unfinished scale; `done` for all where reading them would
    need the other processes (Ctrl-C reaches each alone) or the state was given to a call."""
    alive = not any(x.is_deleted() for x in jax.tree.leaves(state.pair_steps))
    if alive and jax.process_count() == 1:
      return self.layout.gather(state.pair_steps)
    return np.full(sum(self.layout.counts), done, np.int32)

  def _step_sizes(self, state: LoopState) -> np.ndarray | None:
    """(B,) each pair's last step size: its line search's, or the configured learning rate."""
    found = optax.tree_utils.tree_get(state.opt_state, 'learning_rate')
    if found is None and self.program.spec.optimizer == make_optimizer(self.config):
      return np.full(sum(self.layout.counts), self.config.optim.learning_rate, np.float32)
    return None if found is None else self.layout.gather(found)

  def _non_finite_error(self, state: LoopState, weights, scale: int, history) -> NonFiniteLossError:
    failed = np.flatnonzero(self.layout.gather(state.failed))
    keys = self.program.step_keys(state)
    _, values = self.program.evaluate(
      self.params, state.first_bad, state.targets, weights, keys, state.guides
    )
    bad_terms = [
      name for name, v in values.items() if not np.isfinite(self.layout.gather(v)[failed]).all()
    ]
    what = f'loss term {", ".join(map(repr, bad_terms))}' if bad_terms else 'the gradient'
    return NonFiniteLossError(
      f'{what} became non-finite (NaN or inf) for pair(s) {failed.tolist()} at scale {scale}; '
      'stopped, keeping the last finite images',
      images=self.frames.crop(self.layout.gather(state.last_finite), scale),
      terms=tuple(bad_terms),
      history=history,
    )


def prepare(
  contents: Any,
  styles: Sequence[Any],
  config: ml_collections.ConfigDict | None = None,
  *,
  style_weights: Any = None,
  init_images: Any = None,
  guides: Mapping[str, Any] | None = None,
  style_guides: Sequence[Mapping[str, Any]] | None = None,
  terms: Mapping[str, LossTerm] | None = None,
  pair_weights: Mapping[str, Any] | None = None,
  optimizer: Optimizer | optax.GradientTransformation | None = None,
  network: tuple[vgg.VGG19, Any] | None = None,
) -> Stylization:
  """Checks and places a batch, and picks its compiled program; arguments as for `stylize`.

  `prepare(...).run(callback)` is `stylize`; the `Stylization` also exposes the compiled
  `program`, and each scale's targets and start state, for benchmarks and tests.

  Raises:
    ConfigError, ImageError: invalid settings or inputs, before anything is compiled.
  """
  config = config_lib.default_config() if config is None else config
  config_lib.validate(config)
  heap.trim_after_compiles()  # Else, on a CPU, the compiler's freed heap adds to the steps' peak.
  contents, shapes = inputs.check_contents(contents)
  styles = [inputs.check_images(s, f'styles[{i}]', batched=False) for i, s in enumerate(styles)]
  num_pairs = len(shapes)
  blend = inputs.blend_weights(style_weights, num_pairs, len(styles))
  chosen = dict(terms_from_config(config) if terms is None else terms)
  per_pair = inputs.pair_weights(pair_weights, chosen, num_pairs)
  if per_pair is not None:  # Each term's largest weight stands for it in the checks.
    chosen = {name: t._replace(weight=float(per_pair[name].max())) for name, t in chosen.items()}
  check_terms(chosen)
  chosen = {name: term for name, term in chosen.items() if term.weight > 0}
  layers = layers_of(chosen.values())
  frames = buckets.Frames.create(shapes, config, chosen)  # Checks that the pairs can share it.
  sizes = frames.sizes
  schedule.check_sizes(sorted({s for scale in frames.own for s in scale}), styles, layers, config)
  if config.init.kind == 'image':
    init_images = inputs.check_init_images(init_images, num_pairs)
  guides = inputs.check_pair_guides(guides, shapes)
  if style_guides is not None:
    if len(style_guides) != len(styles):
      raise ConfigError(f'style_guides has {len(style_guides)} entries for {len(styles)} styles')
    style_guides = [
      inputs.check_guides(g, s.shape, f'style_guides[{i}]')
      for i, (g, s) in enumerate(zip(style_guides, styles, strict=True))
    ]
  style_shapes = [s.shape[:2] for s in styles]
  blend, style_guides = regions.settle(guides, style_guides, style_shapes, blend, style_weights)
  layout = PairLayout.create(num_pairs, config.devices.count)
  optimizer = make_optimizer(config) if optimizer is None else as_optimizer(optimizer)
  model, params = network or weights.load_vgg19(
    config.network.weights, pooling=config.network.pooling, dtype=jnp.dtype(config.network.dtype)
  )
  params = vgg.cast_params(params, model.dtype)  # Once, not at every step.
  groups = layout.pair_groups(config.devices.pair_group_size)

  # Every input is fitted once, from its own pixels, to the final size; coarser scales are
  # resized from there. The scripts fit files by the same rule, so both paths agree.
  originals = frames.fit(contents, -1)
  guides = {name: frames.fit(g, -1) for name, g in guides.items()}
  side = schedule.style_side(sizes[-1], config)
  fitted = [resample.fit_size(s.shape[:2], side) for s in styles]
  styles = [resample.resize(s, size) for s, size in zip(styles, fitted, strict=True)]
  if style_guides is not None:
    style_guides = [
      {name: resample.resize(g, size) for name, g in guides_.items()}
      for guides_, size in zip(style_guides, fitted, strict=True)
    ]
  regions.check(chosen, guides, style_guides, blend, sizes, config)
  controlled, pair_styles = inputs.control_inputs(  # Each content's own pixels.
    frames.crop(originals), styles, blend, config.color_control, style_guides
  )

  # The program is built from the terms without their weights, which are its arguments: a sweep
  # over weights compiles once.
  unweighted = tuple((n, t._replace(weight=1.0)) for n, t in frames.terms(chosen).items())
  # Remat and tiles as the config says, or as the memory estimate chooses; a run that cannot fit
  # stops here, before compiling.
  if config.memory.tile_size > 0:
    tiles.check_tileable(chosen)
  base = objective.Objective(model, unweighted, gate=per_pair is not None)
  channels = {name: g.shape[-1] for name, g in guides.items()}
  work = memory.workload(base, params, optimizer, layout, groups, sizes, styles, channels)
  fit = memory.plan(config, work)
  frames.check(config, chosen, tiled=fit.tiling is not None)
  base = dataclasses.replace(base, model=model.clone(remat=fit.remat))
  spec = ProgramSpec(
    objective=base if fit.tiling is None else tiles.tile_objective(base, fit.tiling),
    optimizer=optimizer,
    ema_decay=config.optim.ema_decay,
    chunk_size=config.schedule.chunk_size,
    groups=groups,
    parametrization=parametrization(config),
    tolerance=config.schedule.plateau_tolerance,
    plateau_steps=config.schedule.plateau_steps if config.schedule.plateau_tolerance else 1,
  )
  return Stylization(
    config=config,
    program=build_program(spec),
    layout=layout,
    params=layout.replicate(params),
    term_weights={
      name: np.full(num_pairs, term.weight, np.float32) if per_pair is None else per_pair[name]
      for name, term in chosen.items()
    },
    contents=frames.fit(controlled, -1),
    originals=originals,
    guides=guides,
    pair_styles=pair_styles,
    init_images=init_images,
    sizes=sizes,
    steps=schedule.steps_per_scale(config),
    plan=fit,
    frames=frames,
  )
