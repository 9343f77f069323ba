"""Small settings and inputs shared by the engine, program and pairs tests."""

import jax
import jax.numpy as jnp
import numpy as np

import nst_jax
from nst_jax.run import config as config_lib


def small_config(*overrides: str):
  """Shallow layers and a tiny image, so that a step costs milliseconds.

  `overrides` are `'field=value'` strings (`'schedule.num_steps=2'`), applied in order with
  `nst_jax.run.config.apply_override`.
  """
  config = nst_jax.default_config()
  config.image_size = 32
  config.schedule.num_steps = 6
  config.schedule.chunk_size = 3
  config.optim.name = 'adam'
  config.losses.content.layers = {'relu2_1': 1.0}
  config.losses.gram.layers = {'relu1_1': 0.5, 'relu2_1': 0.5}
  config.losses.content.weight = 1.0
  config.losses.gram.weight = 1e-3
  config.normalize_losses = False  # Raw weights: the tests compute with them.
  config.devices.count = 1
  for override in overrides:
    config_lib.apply_override(config, override)
  return config


def small_pairs():
  """Two contents (2, 32, 32, 3) and two styles of other sizes, made by code, in [0, 1]."""
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:32, 0:32] / 31.0
  contents = np.stack(
    [
      np.stack([x, y, 0.5 * np.ones_like(x)], -1),
      np.stack([(x > 0.5) * 0.8, 0.3 + 0.4 * y, x * y], -1),
    ]
  ).astype(np.float32)
  styles = [
    rng.uniform(size=(40, 40, 3)).astype(np.float32),
    np.stack([np.sin(8 * x) ** 2, np.cos(5 * y) ** 2, x], -1).astype(np.float32),
  ]
  return contents, styles


def random_network(seed: int = 0):
  """A VGG19 with random weights, up to block 2: for equivalence tests, which need no download.

  Inputs are standardised as for torchvision weights, so that activations stay of order one.
  """
  model = nst_jax.VGG19(pooling='avg', preprocessing='torch')
  params = model.init(jax.random.key(seed), jnp.zeros((1, 32, 32, 3)), ('relu2_2',))
  return model, params
