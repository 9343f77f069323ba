"""Tests for nst_jax.run.lbfgs and the L-BFGS options of nst_jax.run.optimizers: every option
converges on box-constrained quadratics whose solution is known, and every iterate stays in
[0, 1]."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nst_jax
from nst_jax.run import config as config_lib
from nst_jax.run import lbfgs, optimizers

SIZE = 40


def _quadratics():
  """`(f, solutions)`: f(x, k) = 0.5 (x - c_k)' Q_k (x - c_k) over x in [0, 1]^SIZE, for k = 0
  (Q diagonal: the solution is c clipped) and k = 1 (Q rotated: solved independently), both of
  condition number 100 with c partly outside the box, so that about half of each solution sits
  on a bound."""
  rng = np.random.default_rng(1)
  eigen = np.diag(np.geomspace(1.0, 100.0, SIZE))
  rotation = np.linalg.qr(rng.normal(size=(SIZE, SIZE)))[0]
  qs = np.stack([eigen, rotation @ eigen @ rotation.T])
  cs = rng.uniform(-0.6, 1.6, (2, SIZE))
  solutions = np.stack([np.clip(cs[0], 0, 1), _projected_gradient(qs[1], cs[1])])
  qs, cs = jnp.asarray(qs, jnp.float32), jnp.asarray(cs, jnp.float32)

  def f(x, k):
    d = x - cs[k]
    return 0.5 * d @ qs[k] @ d

  return f, solutions


def _projected_gradient(q: np.ndarray, c: np.ndarray) -> np.ndarray:
  """The box-constrained minimum by projected gradient descent in float64 (step 1/L), run until
  it no longer moves: an independent reference."""
  x, step = np.clip(c, 0, 1), 1.0 / np.linalg.eigvalsh(q).max()
  for _ in range(200_000):
    new = np.clip(x - step * q @ (x - c), 0, 1)
    if np.abs(new - x).max() < 1e-13:
      break
    x = new
  return x


def _minimize(f, overrides: tuple[str, ...], steps: int) -> np.ndarray:
  """Runs the optimizer `config.optim` names on both problems as the loop does (its cached
  value and gradient reused, the iterate clipped to [0, 1] after each update).

  Returns:
    (2, steps + 1, SIZE) the iterates of each problem.
  """
  config = nst_jax.default_config()
  for override in ('optim.name=lbfgs', *overrides):
    config_lib.apply_override(config, override)
  config_lib.validate(config)
  transform = optimizers.make_optimizer(config).transform

  def run(k):
    fk = functools.partial(f, k=k)

    def step(carry, _):
      x, state, value, grad = carry
      updates, state = transform.update(grad, state, x, value=value, grad=grad, value_fn=fk)
      x = jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0)
      value, grad = (optax.tree_utils.tree_get(state, name) for name in ('value', 'grad'))
      return (x, state, value, grad), x

    x = jnp.full(SIZE, 0.5, jnp.float32)
    start = (x, transform.init(x), *jax.value_and_grad(fk)(x))
    return jnp.concatenate([x[None], jax.lax.scan(step, start, length=steps)[1]])

  return np.asarray(jax.jit(jax.vmap(run))(jnp.arange(2)))


OPTIONS = {
  'backtracking': ('optim.line_search=backtracking',),
  'fixed step, memory 50': ('optim.line_search=none', 'optim.lbfgs_memory=50'),
  'memory 3, 3 trials, c1 0.1': (
    'optim.line_search=backtracking',
    'optim.lbfgs_memory=3',
    'optim.line_search_steps=3',
    'optim.decrease_tolerance=0.1',
  ),
}


@pytest.mark.parametrize('name', list(OPTIONS))
def test_each_option_converges_to_the_box_constrained_minimum(name):
  f, solutions = _quadratics()
  iterates = _minimize(f, OPTIONS[name], steps=150)
  assert iterates.min() >= 0.0 and iterates.max() <= 1.0  # Every iterate, not only the last.
  np.testing.assert_allclose(iterates[:, -1], solutions, atol=2e-3)
  assert all(0.3 < np.mean((x == 0) | (x == 1)) < 0.7 for x in solutions)  # Bounds do bind.


def test_the_two_loop_recursion_applies_the_bfgs_inverse_hessian():
  """The two-loop recursion equals the dense BFGS inverse update, applied pair by pair (oldest
  first) to gamma I, on a memory that has wrapped around."""
  rng = np.random.default_rng(0)
  n, m = 6, 4
  transform = lbfgs.projected_lbfgs(memory_size=m)
  state = transform.init(jnp.zeros(n))
  for _ in range(7):  # Slots are overwritten: only the last m pairs count.
    s = rng.normal(size=n)
    y = s + 0.3 * rng.normal(size=n)  # s . y > 0.
    slot = int(state.index)
    state = state._replace(
      s_memory=state.s_memory.at[slot].set(s),
      y_memory=state.y_memory.at[slot].set(y),
      rho=state.rho.at[slot].set(1.0 / (s @ y)),
      index=jnp.int32((slot + 1) % m),
      gamma=jnp.float32(s @ y / (y @ y)),
    )
  pairs = [
    (np.asarray(state.s_memory[j % m]), np.asarray(state.y_memory[j % m]))
    for j in range(int(state.index), int(state.index) + m)
  ]
  h = float(state.gamma) * np.eye(n)
  for s, y in pairs:
    rho = 1.0 / (s @ y)
    left = np.eye(n) - rho * np.outer(s, y)
    h = left @ h @ left.T + rho * np.outer(s, s)
  v = rng.normal(size=n)
  np.testing.assert_allclose(lbfgs.two_loop(jnp.asarray(v, jnp.float32), state), h @ v, rtol=1e-4)


def test_the_state_counts_the_line_search_evaluations():
  calls = []

  def f(x):
    jax.debug.callback(lambda: calls.append(1))
    d = x - jnp.asarray([0.2, 0.15, 0.25])
    return 10.0 * jnp.sum(d**4 + d**2)

  # The first step (of length 1) overshoots the nearby minimum: the line search backtracks.
  transform = lbfgs.projected_lbfgs(5, project=lambda x: jnp.clip(x, 0, 1))
  update = jax.jit(lambda g, s, x, v: transform.update(g, s, x, value=v, grad=g, value_fn=f))
  x = jnp.full(3, 0.1)
  state = transform.init(x)
  value, grad = jax.value_and_grad(f)(x)
  counts = []
  for _ in range(8):
    calls.clear()
    updates, state = update(grad, state, x, value)
    jax.effects_barrier()
    x, value, grad = x + updates, state.value, state.grad
    assert int(state.num_linesearch_steps) == len(calls)
    counts.append(len(calls))
  assert counts[0] > 1 and min(counts) == 1
  np.testing.assert_allclose(jax.grad(f)(x), 0.0, atol=1e-4)


@pytest.mark.parametrize(
  ('overrides', 'field'),
  [
    (('optim.decrease_tolerance=0.5',), 'decrease_tolerance'),
    (('optim.line_search=backtracking', 'optim.line_search_steps=0'), 'line_search_steps'),
    (('optim.curvature_tolerance=1e-5',), 'curvature_tolerance'),
    (('optim.line_search=wolfe',), 'line_search'),
  ],
)
def test_bad_optimizer_settings_are_one_clear_error(overrides, field):
  config = nst_jax.default_config()
  for override in overrides:
    config_lib.apply_override(config, override)
  with pytest.raises(nst_jax.ConfigError, match=f'config.optim.{field}'):
    config_lib.validate(config)
