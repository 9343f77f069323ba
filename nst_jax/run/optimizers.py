"""The optimizers: which optax transformation a config names, and how the loop drives it."""

import functools
from typing import NamedTuple

import ml_collections
import optax

from nst_jax.errors import ConfigError


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


def make_optimizer(config: ml_collections.ConfigDict) -> Optimizer:
  """The optimizer named by `config.optim.name`: optax L-BFGS with zoom line search, or Adam.

  Equal settings give the same object, so that repeated `stylize` calls reuse their compilation.
  """
  return _optimizer(
    config.optim.name, float(config.optim.learning_rate), int(config.optim.lbfgs_memory)
  )


@functools.lru_cache(maxsize=8)
def _optimizer(name: str, learning_rate: float, lbfgs_memory: int) -> Optimizer:
  if name == 'lbfgs':
    return Optimizer(optax.lbfgs(memory_size=lbfgs_memory), line_search=True)
  if name == 'adam':
    return Optimizer(optax.adam(learning_rate))
  raise ConfigError(f'config.optim.name={name!r} is not one of: lbfgs, adam')


def as_optimizer(optimizer: Optimizer | optax.GradientTransformation) -> Optimizer:
  """`optimizer` itself, or a bare optax transformation as one without a line search."""
  return optimizer if isinstance(optimizer, Optimizer) else Optimizer(optimizer)
