"""The compiled program: one optimizer chunk for a batch of pairs, as a first-class object.

A `ProgramSpec` is everything that determines the compiled code: the objective (network and
terms, without their weights), the optimizer, iterate averaging, the chunk length and how the
pairs are grouped on the devices. It is frozen and hashable, and `build_program(spec)` returns
the same `Program` for equal specs, so that repeated `stylize` calls compile once. Term weights
and the step count are arguments of the compiled functions.

`Program.run_chunk` runs up to `chunk_size` steps in a `lax.fori_loop` whose trip count is the
steps left, so one compiled function serves every chunk and any step count. Pixels stay in
[0, 1] by projection: each update is followed by a clip. For a line-search optimizer (L-BFGS)
the line search's cached value and gradient (those of the point before the clip) are reused,
which is exact whenever no pixel left [0, 1] in that step.
"""

import dataclasses
import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nst_jax import color, objective, schedule
from nst_jax.errors import ConfigError
from nst_jax.optimizers import Optimizer
from nst_jax.pairs import PairGroups


class LoopState(NamedTuple):
  """The optimization's state for a batch of B pairs at one scale.

  Attributes:
    images: (B, h, w, 3) current iterates, in [0, 1].
    targets: every term's target per pair (leading B axis); refreshed terms change them.
    keys: (B, ...) the raw data (`jax.random.key_data`) of the pairs' PRNG keys at this scale;
      step t uses `fold_in(key, t)`.
    opt_state: the optax state, every leaf with a leading B axis.
    average: (B, h, w, 3) exponential moving average of the iterates.
    last_finite: (B, h, w, 3) latest iterate whose objective was finite.
    first_bad: (B, h, w, 3) first iterate whose objective was not finite.
    failed: (B,) bool, whether any objective was non-finite.
    step: () int32, steps done at this scale.
  """

  images: jax.Array
  targets: Any
  keys: jax.Array
  opt_state: Any
  average: jax.Array
  last_finite: jax.Array
  first_bad: jax.Array
  failed: jax.Array
  step: jax.Array


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
  """Everything that determines a compiled `Program`; equal specs share one.

  Attributes:
    objective: the network and the terms (their weights are not part of it).
    optimizer: the optax transformation and whether it runs a line search.
    ema_decay: > 0 keeps an exponential moving average of the iterates.
    chunk_size: steps per call of `run_chunk`.
    groups: the pair axis's mesh and pairs per group on each device.
  """

  objective: objective.Objective
  optimizer: Optimizer
  ema_decay: float
  chunk_size: int
  groups: PairGroups


class Program:
  """The compiled functions of one `ProgramSpec`, for a sharded batch of pairs.

  All take `params` (the network's variables, replicated) and `weights` (`{term: weight}`, each
  a scalar for every pair or (B,), one per pair); a batch's `images` are (B, h, w, 3), its
  `targets` a pytree with a leading B axis, and its `keys` (B,) PRNG keys (this step's, for
  stochastic terms).
  """

  def __init__(self, spec: ProgramSpec):
    self.spec = spec
    self.start_state = jax.jit(self._start_state)
    self.run_chunk = jax.jit(self._run_chunk)
    self.evaluate = jax.jit(self._evaluate)
    self.value_and_grad = jax.jit(self._value_and_grad)

  @property
  def objective(self) -> objective.Objective:
    """`objective(params, image, targets, weights) -> (total, values)` for ONE example."""
    return self.spec.objective

  def _value_fn(self, params, targets, weights, key) -> Callable[[jax.Array], jax.Array]:
    return lambda image: self.objective(params, image, targets, weights, key)[0]

  def _evaluate(self, params, images, targets, weights, keys):
    """`(total (B,), {name: (B,)})`: the objective and each term's value, pair by pair."""
    return self.spec.groups.map(
      lambda x, t, w, k: self.objective(params, x, t, w, k),
      images,
      targets,
      _per_pair(weights, images.shape[0]),
      keys,
    )

  def _value_and_grad(self, params, images, targets, weights, keys):
    """`(value (B,), grad (B, h, w, 3))` of the objective, pair by pair."""
    return self.spec.groups.map(
      lambda x, t, w, k: jax.value_and_grad(self._value_fn(params, t, w, k))(x),
      images,
      targets,
      _per_pair(weights, images.shape[0]),
      keys,
    )

  def _start_state(self, images: jax.Array, targets: Any, keys: jax.Array) -> LoopState:
    """A fresh state at `images` (B, h, w, 3): the optimizer's shapes follow the image size."""
    state = LoopState(
      images=images,
      targets=targets,
      keys=keys,
      opt_state=jax.vmap(self.spec.optimizer.transform.init)(images),
      average=images,
      last_finite=images,
      first_bad=images,
      failed=jnp.zeros(images.shape[0], bool),
      step=jnp.zeros((), jnp.int32),
    )
    return self.spec.groups.constrain(state)

  def step_keys(self, state: LoopState) -> jax.Array:
    """(B,) this step's PRNG keys: each pair's key folded with the step."""
    keys = jax.random.wrap_key_data(state.keys)
    return jax.vmap(lambda k: jax.random.fold_in(k, state.step))(keys)

  def _refresh(self, params, state: LoopState) -> tuple[Any, jax.Array]:
    """The targets after this step's refreshes (see `LossTerm.refresh`), and whether any ran."""
    refreshing = self.objective.refreshing
    if not refreshing:
      return state.targets, jnp.zeros((), bool)
    due = {
      name: (state.step > 0) & (state.step % term.refresh_every == 0) for name, term in refreshing
    }
    any_due = jnp.any(jnp.stack(list(due.values())))

    def refresh_pair(image, targets):
      features = self.objective.example_features(params, image)
      return {name: term.refresh(features, targets[name]) for name, term in refreshing}

    def refresh():
      new = self.spec.groups.map(refresh_pair, state.images, state.targets)
      updated = {
        name: jax.tree.map(
          lambda a, b, d=due[name]: jnp.where(d, a, b), new[name], state.targets[name]
        )
        for name in new
      }
      return {**state.targets, **updated}

    return jax.lax.cond(any_due, refresh, lambda: state.targets), any_due

  def _step(self, params, state: LoopState, weights) -> tuple[LoopState, jax.Array]:
    """One optimizer step of every pair; returns the new state and the objective (B,) before it."""
    optimizer, groups = self.spec.optimizer, self.spec.groups
    targets, refreshed = self._refresh(params, state)
    keys = self.step_keys(state)
    fresh = lambda: self._value_and_grad(params, state.images, targets, weights, keys)  # noqa: E731
    if optimizer.line_search and not self.objective.stochastic:
      # Its line search already evaluated this point, except at the first step and after a
      # refresh of the targets. Decided once for the batch: a vmapped `lax.cond` would compute
      # both branches.
      cached = optax.tree_utils.tree_get(state.opt_state, 'value')
      cached_grad = optax.tree_utils.tree_get(state.opt_state, 'grad')
      value, grad = jax.lax.cond(
        refreshed | jnp.isinf(cached).any(), fresh, lambda: (cached, cached_grad)
      )
    else:
      value, grad = fresh()

    def update(g, s, x, v, t, w, k):
      updates, s = optimizer.transform.update(
        g, s, x, value=v, grad=g, value_fn=self._value_fn(params, t, w, k)
      )
      return jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0), s

    pair_weights = _per_pair(weights, state.images.shape[0])
    operands = (grad, state.opt_state, state.images, value, targets, pair_weights, keys)
    if optimizer.line_search:
      # One pair at a time, so that the line search's `lax.cond`s stay conds; vmapped (a per-pair
      # predicate) each would evaluate the objective in both of its branches.
      images, opt_state = groups.one_at_a_time().map(update, *operands)
    else:
      images, opt_state = jax.vmap(update)(*operands)
    finite = jnp.isfinite(value) & jnp.isfinite(grad).all(axis=(1, 2, 3))
    newly_bad = ~finite & ~state.failed
    decay = self.spec.ema_decay
    new_state = LoopState(
      images=images,
      targets=targets,
      keys=state.keys,
      opt_state=opt_state,
      average=decay * state.average + (1.0 - decay) * images,
      last_finite=jnp.where(finite[:, None, None, None], state.images, state.last_finite),
      first_bad=jnp.where(newly_bad[:, None, None, None], state.images, state.first_bad),
      failed=state.failed | ~finite,
      step=state.step + 1,
    )
    return new_state, value

  def _run_chunk(self, params, state: LoopState, weights, num_steps):
    """Up to `chunk_size` steps, stopping at `num_steps` steps at this scale.

    Returns:
      `(state, totals, (total, values))`: totals (chunk_size, B) is the objective before each
      step (NaN for steps not run); total (B,) and values `{name: (B,)}` are the objective and
      the terms at the chunk's last iterate.
    """
    chunk_size = self.spec.chunk_size
    # A loop over only the steps left, rather than a scan of `lax.cond`s: XLA hoists the
    # loop-invariant work (the transposed conv kernels) out of a loop but not out of a cond.
    count = jnp.clip(num_steps - state.step, 0, chunk_size)
    totals = jnp.full((chunk_size, state.images.shape[0]), jnp.nan, jnp.float32)

    def body(i, carry):
      state, totals = carry
      state, value = self._step(params, state, weights)
      return state, totals.at[i].set(value)

    state, totals = jax.lax.fori_loop(0, count, body, (state, totals))
    state = self.spec.groups.constrain(state)
    values = self._evaluate(params, state.images, state.targets, weights, self.step_keys(state))
    return state, totals, values

  def targets(
    self,
    params: Any,
    contents: jax.Array,
    pair_styles: color.PairStyles,
    style_side: int,
  ) -> Any:
    """Every term's target for each pair, stacked on a leading B axis (not yet sharded).

    Args:
      contents: (B, h, w, 3) contents at this scale.
      pair_styles: each pair's style images and blend weights; styles are resized so that their
        longest side is `style_side`, and each distinct style's features are computed once.
    """
    return _batch_targets(self.objective, params, contents, pair_styles, style_side)


def _per_pair(weights: Any, count: int) -> dict[str, jax.Array]:
  """`{term: (B,)}`: weights given once for every pair broadcast over the B pairs."""
  return {name: jnp.broadcast_to(w, (count,)) for name, w in weights.items()}


def _batch_targets(objective_, params, contents, pair_styles, style_side) -> Any:
  features, pair_targets = _target_fns(objective_)
  views = objective_.style_views
  content_features = features(params, contents)
  cache: dict[Hashable, Any] = {}
  per_pair = []
  for b in range(contents.shape[0]):
    style_features = []
    for key, image in zip(pair_styles.ids[b], pair_styles.images[b], strict=True):
      if key not in cache:
        image = schedule.resize(image, schedule.fit_size(image.shape[:2], style_side))
        one = lambda x: jax.tree.map(lambda y: y[0], features(params, x[None]))  # noqa: E731
        cache[key] = one(image), {v: one(objective.STYLE_VIEWS[v](image)) for v in views}
      style_features.append(cache[key])
    content_b = jax.tree.map(lambda x, b=b: x[b], content_features)
    plain = [f for f, _ in style_features]
    viewed = {v: [by_view[v] for _, by_view in style_features] for v in views}
    per_pair.append(pair_targets(content_b, plain, pair_styles.weights[b], viewed))
  return _stack_pairs(per_pair)


def _stack_pairs(per_pair: Sequence[dict[str, Any]]) -> Any:
  """The pairs' targets stacked on a leading axis; `ConfigError` naming the term if they differ
  in shape (a term whose target keeps the style's positions, given styles of different sizes or
  different numbers of styles in one batch)."""
  for name in per_pair[0]:
    shapes = [jax.tree.map(jnp.shape, targets[name]) for targets in per_pair]
    if any(s != shapes[0] for s in shapes):
      raise ConfigError(
        f'loss term {name!r}: its targets differ in shape between the pairs of one batch '
        f'({shapes[0]} and {next(s for s in shapes if s != shapes[0])}); give every pair the '
        'same number of styles, or run such pairs in separate batches'
      )
  return jax.tree.map(lambda *xs: jnp.stack(xs), *per_pair)


def _memoized(builder: Callable[..., Any]) -> Callable[..., Any]:
  """`builder` with its results kept for equal arguments (the 8 latest). Arguments that cannot
  be hashed (a user's term holding an array, say) are built afresh each time."""
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


@_memoized
def _target_fns(objective_: objective.Objective) -> tuple[Callable, Callable]:
  terms = dict(objective_.terms)

  @functools.partial(jax.jit, static_argnums=2)
  def pair_targets(content, styles, blend: Sequence[float], views):
    return objective.compute_targets(terms, content, styles, blend, views)

  return jax.jit(objective_.features), pair_targets


@_memoized
def build_program(spec: ProgramSpec) -> Program:
  """The `Program` of `spec`; equal specs give the same object, compiled once.

  `build_program.cache_clear()` forgets them (tests use it to count compilations).
  """
  return Program(spec)
