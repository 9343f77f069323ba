"""What a padded batch costs (`scripts/benchmark_buckets.py`): the step time of a batch of contents
of different sizes, padded to their bucket (`nst_jax.run.buckets`), against a batch of as many
contents all of the bucket's size, timed in turns (A B A B) so that both see the same load.
"""

import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.run import engine


def contents_of(heights: Sequence[int], width: int, seed: int = 0) -> list[np.ndarray]:
  """Smooth synthetic photographs (h, `width`, 3) in [0, 1], one per height."""
  rng = np.random.default_rng(seed)
  out = []
  for h in heights:
    y, x = np.mgrid[0:h, 0:width] / max(h, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    out.append(0.5 + 0.4 * np.sin(6 * x[..., None] + 4 * y[..., None] + phase))
  return [c.astype(np.float32) for c in out]


class _Chunks:
  """A prepared batch whose compiled chunk can be timed again and again (each continues)."""

  def __init__(self, contents: Any, styles: list[np.ndarray], config, network):
    prepared = engine.prepare(contents, styles, config, network=network)
    self.program, self.params = prepared.program, prepared.params
    self.state = prepared.start_state(0)
    self.weights = prepared.pair_weights(0, self.state)
    self.never = jnp.int32(2**30)  # No chunk reaches it: every call runs a full chunk.
    self.padded = prepared.frames.padded
    self.seconds()  # Compiles, and warms up.

  def cost(self) -> dict[str, float]:
    """XLA's cost analysis of one value-and-gradient evaluation of every pair: GFLOP and GB
    accessed (load-independent; a loop's body counts once)."""
    state, keys = self.state, self.program.step_keys(self.state)
    args = (self.params, state.variables, state.targets, self.weights, keys, state.guides)
    analysis = self.program.value_and_grad.lower(*args).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return {
      'gflop': analysis.get('flops', 0.0) / 1e9,
      'gb_accessed': analysis.get('bytes accessed', 0.0) / 1e9,
    }

  def seconds(self) -> float:
    start = time.perf_counter()
    out = self.program.run_chunk(self.params, self.state, self.weights, self.never)
    self.state = jax.block_until_ready(out)[0]
    return time.perf_counter() - start


def compare(
  heights: Sequence[int],
  width: int,
  config: ml_collections.ConfigDict,
  network: Any,
  rounds: int = 5,
) -> dict[str, Any]:
  """Seconds per step of the padded batch (contents `heights` x `width`) and of the batch of the
  bucket's size, in `rounds` interleaved rounds of one chunk each; medians and their ratio."""
  mixed = contents_of(heights, width)
  equal = contents_of([max(heights)] * len(heights), width, seed=1)
  styles = contents_of([width] * len(heights), width, seed=2)[::-1]  # Pair i: style i.
  cases = {'padded': _Chunks(mixed, styles, config, network)}
  cases['equal'] = _Chunks(np.stack(equal), styles, config, network)
  if not cases['padded'].padded:
    raise ValueError(f'contents of heights {list(heights)} were not padded into one batch')
  steps = config.schedule.chunk_size
  times = {name: [] for name in cases}
  for _ in range(rounds):
    for name, chunks in cases.items():
      times[name].append(chunks.seconds() / steps)
  ratios = np.asarray(times['padded']) / np.asarray(times['equal'])
  return {
    'cost': {name: chunks.cost() for name, chunks in cases.items()},
    'heights': list(heights),
    'width': width,
    'pairs': len(heights),
    'steps_per_chunk': steps,
    'step_s': {name: float(np.median(t)) for name, t in times.items()},
    'step_times_s': times,
    'ratio': float(np.median(ratios)),
  }
