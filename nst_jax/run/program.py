"""The compiled program: one optimizer chunk for a batch of pairs, as a first-class object.

A `ProgramSpec` is everything that determines the compiled code: the objective (network and
terms, without their weights), the optimizer, iterate averaging, the chunk length and how the
pairs are grouped on the devices. It is frozen and hashable, and `build_program(spec)` returns
the same `Program` for equal specs, so that repeated `stylize` calls compile once. Term weights
and the step count are arguments of the compiled functions.

`Program.run_chunk` runs up to `chunk_size` steps in a loop whose trip count is the steps left,
so one compiled function serves every chunk and any step count. The optimizer's variables are
the pixels or their Laplacian pyramid (`nst_jax.core.parametrization`); the image stays in [0, 1] by
projection: each update is followed by a clip. For a line-search optimizer (L-BFGS) the line
search's cached value and gradient (those of the point before the clip) are reused, which is
exact whenever no pixel left [0, 1] in that step. With a tolerance, each pair stops on its own
plateau and stays frozen while the others go on.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nst_jax.core import objective
from nst_jax.core.parametrization import Parametrization
from nst_jax.run import optimizers
from nst_jax.run.optimizers import Optimizer
from nst_jax.run.pairs import PairGroups
from nst_jax.run.targets import memoized


class LoopState(NamedTuple):
  """The optimization's state for a batch of B pairs at one scale.

  Attributes:
    variables: the optimizer's variables with a leading B axis: the images (B, h, w, 3) in
      [0, 1], or their pyramid levels (see `Program.images`).
    targets: every term's target per pair (leading B axis); refreshed terms change them.
    guides: `{name: (B, h, w, C)}` each pair's guide images at this scale, in [0, 1] (may be
      empty).
    keys: (B, ...) the raw data (`jax.random.key_data`) of the pairs' PRNG keys at this scale;
      step t uses `fold_in(key, t)`.
    opt_state: the optax state, every leaf with a leading B axis.
    average: (B, h, w, 3) exponential moving average of the iterates.
    last_finite: (B, h, w, 3) latest iterate whose objective was finite.
    first_bad: (B, h, w, 3) first iterate whose objective was not finite.
    failed: (B,) bool, whether any objective was non-finite.
    stopped: (B,) bool, the pair reached its plateau (see `ProgramSpec.tolerance`): frozen.
    pair_steps: (B,) int32, steps each pair took at this scale.
    recent: (B, plateau_steps) the objective at the last steps, for the plateau test.
    step: () int32, steps done at this scale.
  """

  variables: Any
  targets: Any
  guides: Any
  keys: jax.Array
  opt_state: Any
  average: jax.Array
  last_finite: jax.Array
  first_bad: jax.Array
  failed: jax.Array
  stopped: jax.Array
  pair_steps: jax.Array
  recent: jax.Array
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
    parametrization: what the optimizer's variables are (pixels or pyramid levels).
    tolerance: > 0 stops each pair when its objective improved by less than this fraction over
      its last `plateau_steps` steps; 0 never stops early.
    plateau_steps: the window of the plateau test.
  """

  objective: objective.Objective
  optimizer: Optimizer
  ema_decay: float
  chunk_size: int
  groups: PairGroups
  parametrization: Parametrization = Parametrization()
  tolerance: float = 0.0
  plateau_steps: int = 1


class Program:
  """The compiled functions of one `ProgramSpec`, for a sharded batch of pairs.

  All take `params` (the network's variables, replicated) and `weights` (`{term: (B,)}`, each
  pair's weights); a batch's `images` are (B, h, w, 3), its `targets` a pytree with a leading B
  axis, its `keys` (B,) PRNG keys (this step's, for stochastic terms) and its `guides`
  `{name: (B, h, w, C)}` the pairs' guide images (empty: none).
  """

  def __init__(self, spec: ProgramSpec):
    self.spec = spec
    self.start_state = jax.jit(self._start_state)
    self.warm_start = jax.jit(self._warm_start)
    # The state is donated: a chunk's loop runs in the caller's buffers (for L-BFGS, its history
    # is most of the memory), so the state passed in cannot be used again.
    self.run_chunk = jax.jit(self._run_chunk, donate_argnums=1)
    self.evaluate = jax.jit(self._evaluate)
    self.value_and_grad = jax.jit(self._value_and_grad)

  @property
  def objective(self) -> objective.Objective:
    """`objective(params, image, targets, weights) -> (total, values)` for ONE example."""
    return self.spec.objective

  def images(self, state: LoopState) -> jax.Array:
    """(B, h, w, 3) the current images, in [0, 1]."""
    return jax.vmap(self.spec.parametrization.decode)(state.variables)

  def result(self, state: LoopState) -> jax.Array:
    """(B, h, w, 3) what the run returns: the iterate average with `ema_decay`, else the images."""
    return state.average if self.spec.ema_decay else self.images(state)

  def _value_fn(self, params, targets, weights, key, guides) -> Callable[[Any], jax.Array]:
    """The objective of ONE pair as a function of its variables."""
    decode = self.spec.parametrization.decode
    guides = _some(guides)
    return lambda x: self.objective(params, decode(x), targets, weights, key, guides)[0]

  def _evaluate(self, params, images, targets, weights, keys, guides):
    """`(total (B,), {name: (B,)})`: the objective and each term's value of `images`."""
    return self.spec.groups.map(
      lambda x, t, w, k, g: self.objective(params, x, t, w, k, _some(g)),
      images,
      targets,
      weights,
      keys,
      guides,
    )

  def _value_and_grad(self, params, variables, targets, weights, keys, guides):
    """`(value (B,), grad)` of the objective with respect to the variables, pair by pair."""
    return self.spec.groups.map(
      lambda x, t, w, k, g: jax.value_and_grad(self._value_fn(params, t, w, k, g))(x),
      variables,
      targets,
      weights,
      keys,
      guides,
    )

  def _start_state(
    self, images: jax.Array, targets: Any, keys: jax.Array, guides: Any
  ) -> LoopState:
    """A fresh state at `images` (B, h, w, 3): the optimizer's shapes follow the image size."""
    variables = jax.vmap(self.spec.parametrization.encode)(images)
    count = images.shape[0]
    state = LoopState(
      variables=variables,
      targets=targets,
      guides=guides,
      keys=keys,
      opt_state=jax.vmap(self.spec.optimizer.transform.init)(variables),
      average=images,
      last_finite=images,
      first_bad=images,
      failed=jnp.zeros(count, bool),
      stopped=jnp.zeros(count, bool),
      pair_steps=jnp.zeros(count, jnp.int32),
      recent=jnp.full((count, self.spec.plateau_steps), jnp.inf, jnp.float32),
      step=jnp.zeros((), jnp.int32),
    )
    return self.spec.groups.constrain(state)

  def _warm_start(
    self, previous: LoopState, images: jax.Array, targets: Any, keys: jax.Array, guides: Any
  ) -> LoopState:
    """A state at `images` (the next scale's size) that keeps `previous`'s optimizer state.

    Each optimizer-state leaf shaped like the variables (Adam's moments) is resized to the new
    size; the others (step counts) are kept. A line-search optimizer, or variables whose
    structure changes with the size, start afresh: their state does not carry over.
    """
    fresh = self._start_state(images, targets, keys, guides)
    old, new = previous.opt_state, fresh.opt_state
    if self.spec.optimizer.line_search or jax.tree.structure(old) != jax.tree.structure(new):
      return fresh

    def carry(a, b):
      if a.shape == b.shape:
        return a
      return jax.image.resize(a, b.shape, 'linear', antialias=a.size > b.size)

    return fresh._replace(opt_state=self.spec.groups.constrain(jax.tree.map(carry, old, new)))

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

    def refresh_pair(image, targets, guides):
      features = self.objective.example_features(params, image, guides=_some(guides))
      return {name: term.refresh(features, targets[name]) for name, term in refreshing}

    def refresh():
      new = self.spec.groups.map(refresh_pair, self.images(state), state.targets, state.guides)
      updated = {
        name: jax.tree.map(
          lambda a, b, d=due[name]: jnp.where(d, a, b), new[name], state.targets[name]
        )
        for name in new
      }
      return {**state.targets, **updated}

    return jax.lax.cond(any_due, refresh, lambda: state.targets), any_due

  def _plateau(self, state: LoopState, value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(stopped, recent)` after this step's objective `value` (B,): a pair stops when it
    improved by less than `tolerance` (relative) over its last `plateau_steps` steps."""
    if not self.spec.tolerance:
      return state.stopped, state.recent
    slot = state.step % self.spec.plateau_steps
    before = state.recent[:, slot]
    gain = (before - value) / jnp.maximum(jnp.abs(before), 1e-30)
    plateau = jnp.isfinite(before) & (gain < self.spec.tolerance)
    return state.stopped | plateau, state.recent.at[:, slot].set(value)

  def _step(self, params, state: LoopState, weights) -> tuple[LoopState, jax.Array, jax.Array]:
    """One optimizer step of every pair.

    Returns:
      The new state, the objective (B,) before the step, and the objective evaluations (B,)
      int32 the step took for each pair (each with its gradient): 1 for the gradient at the
      current image unless the line search's cached one was reused, plus the line search's.
    """
    optimizer, groups, parametrization = (
      self.spec.optimizer,
      self.spec.groups,
      self.spec.parametrization,
    )
    targets, refreshed = self._refresh(params, state)
    keys = self.step_keys(state)
    guides = state.guides
    fresh = lambda: self._value_and_grad(params, state.variables, targets, weights, keys, guides)  # noqa: E731
    if optimizer.line_search and not self.objective.stochastic:
      # Its line search already evaluated this point, except at the first step and after a
      # refresh of the targets. Decided once for the batch: a vmapped `lax.cond` would compute
      # both branches.
      cached = optax.tree_utils.tree_get(state.opt_state, 'value')
      cached_grad = optax.tree_utils.tree_get(state.opt_state, 'grad')
      evaluated = refreshed | jnp.isinf(cached).any()
      value, grad = jax.lax.cond(evaluated, fresh, lambda: (cached, cached_grad))
    else:
      evaluated = jnp.ones((), bool)
      value, grad = fresh()

    def update(g, s, x, v, t, w, k, guide):
      updates, s = optimizer.transform.update(
        g, s, x, value=v, grad=g, value_fn=self._value_fn(params, t, w, k, guide)
      )
      return parametrization.project(optax.apply_updates(x, updates)), s

    operands = (grad, state.opt_state, state.variables, value, targets, weights, keys, guides)
    if optimizer.line_search:
      # One pair at a time, so that the line search's `lax.cond`s stay conds; vmapped (a per-pair
      # predicate) each would evaluate the objective in both of its branches.
      variables, opt_state = groups.one_at_a_time().map(update, *operands)
    else:
      variables, opt_state = jax.vmap(update)(*operands)
    evaluations = evaluated.astype(jnp.int32) + optimizers.evaluations(opt_state)
    evaluations = jnp.broadcast_to(evaluations, value.shape).astype(jnp.int32)
    stopped, recent = self._plateau(state, value)
    active = ~stopped  # A pair that stops now keeps its image from before this step.

    def where_active(new, old):
      return jax.tree.map(
        lambda a, b: jnp.where(active.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old
      )

    variables = where_active(variables, state.variables)
    opt_state = where_active(opt_state, state.opt_state)
    images, before = jax.vmap(parametrization.decode)(variables), self.images(state)
    finite = jnp.isfinite(value) & jax.vmap(_all_finite)(grad)
    newly_bad = ~finite & ~state.failed
    decay = self.spec.ema_decay
    new_state = LoopState(
      variables=variables,
      targets=targets,
      guides=state.guides,
      keys=state.keys,
      opt_state=opt_state,
      average=where_active(decay * state.average + (1.0 - decay) * images, state.average),
      last_finite=jnp.where(finite[:, None, None, None], before, state.last_finite),
      first_bad=jnp.where(newly_bad[:, None, None, None], before, state.first_bad),
      failed=state.failed | ~finite,
      stopped=stopped,
      pair_steps=state.pair_steps + active,
      recent=recent,
      step=state.step + 1,
    )
    return new_state, value, evaluations

  def _run_chunk(self, params, state: LoopState, weights, num_steps):
    """Up to `chunk_size` steps, stopping at `num_steps` steps at this scale, or when every
    pair has stopped on its plateau.

    Returns:
      `(state, (totals, evaluations), (total, values))`: totals (chunk_size, B) is the objective
      before each step (NaN for steps not run), evaluations (chunk_size, B) int32 the objective
      evaluations of each step (0 for steps not run; see `_step`); total (B,) and values
      `{name: (B,)}` are the objective and the terms at the chunk's last iterate.
    """
    chunk_size = self.spec.chunk_size
    # A loop over only the steps left, rather than a scan of `lax.cond`s: XLA hoists the
    # loop-invariant work (the transposed conv kernels) out of a loop but not out of a cond.
    count = jnp.clip(num_steps - state.step, 0, chunk_size)
    totals = jnp.full((chunk_size, state.failed.shape[0]), jnp.nan, jnp.float32)
    counts = jnp.zeros((chunk_size, state.failed.shape[0]), jnp.int32)

    def running(carry):
      i, state, _ = carry
      if not self.spec.tolerance:
        return i < count
      # Only a run that can stop early asks whether all pairs did (a reduction over devices).
      return (i < count) & ~jnp.all(state.stopped)

    def body(carry):
      i, state, (totals, counts) = carry
      state, value, evaluations = self._step(params, state, weights)
      return i + 1, state, (totals.at[i].set(value), counts.at[i].set(evaluations))

    _, state, (totals, counts) = jax.lax.while_loop(running, body, (0, state, (totals, counts)))
    state = self.spec.groups.constrain(state)
    values = self._evaluate(
      params, self.images(state), state.targets, weights, self.step_keys(state), state.guides
    )
    return state, (totals, counts), values


def _some(guides: Any) -> Any:
  """A pair's guides `{name: (h, w, C)}`, or None where it has none."""
  return guides or None


def _all_finite(tree: Any) -> jax.Array:
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


@memoized
def build_program(spec: ProgramSpec) -> Program:
  """The `Program` of `spec`; equal specs give the same object, compiled once.

  `build_program.cache_clear()` forgets them (tests use it to count compilations).
  """
  return Program(spec)
