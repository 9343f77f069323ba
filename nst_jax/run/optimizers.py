"""The optimizers: which optax transformation a config names, and how the loop drives it."""

import dataclasses
import functools
from typing import NamedTuple

import jax
import ml_collections
import optax

from nst_jax.core.parametrization import Parametrization
from nst_jax.errors import ConfigError
from nst_jax.run import lbfgs


class Optimizer(NamedTuple):
  """An optax transformation, and whether it runs a line search.

  Attributes:
    transform: any optax transformation; its `update` receives `value`, `grad` and `value_fn`
      (the objective of the pair's image) as extra arguments, which it may ignore.
    line_search: True for a transformation like `optax.lbfgs` whose state caches the objective's
      value and gradient at the point it moved to (its `value` and `grad` leaves): the loop then
      reuses them instead of evaluating again, and updates one pair at a time so that the line
      search's `lax.cond`s stay conditional. Correct either way; only the speed differs.
  """

  transform: optax.GradientTransformation
  line_search: bool = False


@dataclasses.dataclass(frozen=True)
class Settings:
  """The `config.optim` fields that choose the transformation (hashable: equal settings share
  one optimizer, and so one compiled program)."""

  name: str
  learning_rate: float
  memory: int
  line_search: str
  line_search_steps: int
  curvature_tolerance: float
  decrease_tolerance: float
  parametrization: Parametrization

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'Settings':
    o = config.optim
    return cls(
      name=o.name,
      learning_rate=float(o.learning_rate),
      memory=int(o.lbfgs_memory),
      line_search=o.line_search,
      line_search_steps=int(o.line_search_steps),
      curvature_tolerance=float(o.curvature_tolerance),
      decrease_tolerance=float(o.decrease_tolerance),
      parametrization=parametrization(config),
    )


def make_optimizer(config: ml_collections.ConfigDict) -> Optimizer:
  """The optimizer that `config.optim` names (see `docs/config.md`):

  - `name='adam'`: optax Adam;
  - `name='lbfgs'`, `line_search='zoom'`: optax L-BFGS with its strong-Wolfe zoom line search,
    the image clipped to [0, 1] after each step (the loop's projection);
  - `name='lbfgs'`, `line_search='backtracking'` or `'none'`: `nst_jax.run.lbfgs`'s projected
    L-BFGS, each trial evaluated inside [0, 1] (`'none'`: the quasi-Newton step taken as it is),
    pixels held at a bound left out of the direction (with `parametrization='pixels'`).

  Equal settings give the same object, so that repeated `stylize` calls reuse their compilation.
  """
  return _optimizer(Settings.from_config(config))


@functools.lru_cache(maxsize=16)
def _optimizer(settings: Settings) -> Optimizer:
  s = settings
  if s.name == 'adam':
    return Optimizer(optax.adam(s.learning_rate))
  if s.name != 'lbfgs':
    raise ConfigError(f'config.optim.name={s.name!r} is not one of: lbfgs, adam')
  if s.line_search == 'zoom':
    search = optax.scale_by_zoom_linesearch(
      max_linesearch_steps=s.line_search_steps,
      initial_guess_strategy='one',
      slope_rtol=s.decrease_tolerance,
      curv_rtol=s.curvature_tolerance,
    )
    return Optimizer(optax.lbfgs(memory_size=s.memory, linesearch=search), line_search=True)
  transform = lbfgs.projected_lbfgs(
    s.memory,
    project=s.parametrization.project,
    bounds=(0.0, 1.0) if s.parametrization.kind == 'pixels' else None,
    max_evaluations=1 if s.line_search == 'none' else s.line_search_steps,
    decrease_tolerance=s.decrease_tolerance,
  )
  return Optimizer(transform, line_search=True)


def parametrization(config: ml_collections.ConfigDict) -> Parametrization:
  """What the optimizer moves, as `config.optim` says."""
  return Parametrization(config.optim.parametrization)


def as_optimizer(optimizer: Optimizer | optax.GradientTransformation) -> Optimizer:
  """`optimizer` itself, or a bare optax transformation as one without a line search."""
  return optimizer if isinstance(optimizer, Optimizer) else Optimizer(optimizer)


def evaluations(opt_state: optax.OptState) -> jax.Array | int:
  """Objective evaluations (each with its gradient) that the last update's line search took:
  the state's `num_linesearch_steps` leaf (optax's line searches, `nst_jax.run.lbfgs`), else 0."""
  count = optax.tree_utils.tree_get(opt_state, 'num_linesearch_steps')
  return 0 if count is None else count
