"""Memory: what a stylization needs, what the device has, and the settings that make it fit.

`estimate` predicts a run's peak memory before anything is compiled, from the image size, the
pairs per device, the optimizer's state (its exact shapes, from `jax.eval_shape`), the network's
activations (bytes per pixel by remat policy, measured from XLA's buffer assignment on CPU) and
the tiling. `plan` picks `config.memory.remat='auto'` and `config.memory.tile_size=0` by that
estimate against `available_bytes()` (or `config.memory.budget_gb`), logs its choice, and raises a
`ConfigError` naming the need, the memory available and the fields that help when nothing fits,
so that a size that cannot fit fails before compiling instead of running out of memory.

The estimate is meant to be within 2x of the measured peak (tests check it against XLA's own
buffer assignment at small sizes; `scripts/benchmark.py --suite=memory` against the process's
peak resident memory at 512 to 8192 px).
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from nst_jax.core import objective
from nst_jax.core.terms import tileable
from nst_jax.core.vgg import REMAT_POLICIES
from nst_jax.errors import ConfigError
from nst_jax.run import targets, tiles
from nst_jax.run.optimizers import Optimizer
from nst_jax.run.pairs import PairGroups, PairLayout

GB = 1e9


class RematCost(NamedTuple):
  """What a `VGG19.remat` policy costs.

  Attributes:
    step_bytes_per_pixel: bytes per pixel of the network's input that one value-and-gradient
      evaluation of VGG19 (through relu5_1, float32) holds at its peak: XLA's buffer assignment
      on CPU, growth from 512 to 1024 px of an Adam chunk (which also evaluates the objective
      once). The full-resolution block 1 sets the peak: with remat, its own backward pass (three
      64-channel maps) and the Gram gradient of relu1_1; without, every block's saved
      activations.
    step_time: step time relative to no remat (measured at 512 px on CPU, interleaved).
  """

  step_bytes_per_pixel: float
  step_time: float


REMAT_COSTS: dict[str, RematCost] = {
  'none': RematCost(1950.0, 1.0),
  'blocks_1_2': RematCost(1150.0, 1.1),
  'blocks_1_3': RematCost(980.0, 1.2),
  'all_blocks': RematCost(960.0, 1.25),
}
# The forward pass alone (targets, evaluation), features returned included: XLA's buffer
# assignment, 788 bytes per pixel from 512 to 1024 px.
FORWARD_BYTES_PER_PIXEL = 800.0
# The runtime, compiled code and loop-invariant copies of the weights, beside the weights: the
# resident memory of a process that has compiled a step at a small size (measured on CPU).
RUNTIME_BYTES = 0.55 * GB
# Copies of the loop state a compiled chunk holds: the donated arguments and the loop's own (with
# L-BFGS, whose history is most of the state, measured the same).
STATE_COPIES = 2.0
# Image-sized buffers of a tiled step, per pixel: the gradient being assembled, the content image
# and the crop of the current window (float32 RGB each).
TILED_BYTES_PER_PIXEL = 3 * 12.0
# Fraction of the available memory a plan may use: headroom for fragmentation and the estimate's
# error.
HEADROOM = 0.85
# Step time of a tiled step per window pixel, relative to an untiled one: its first pass over the
# windows adds a forward pass (measured 9.1x the untiled time at 512 px with 9 windows of 384 px,
# 7.6x the pixels), for choosing the fastest plan that fits.
TILED_COST = 1.8
# Remat policies `config.memory.remat='auto'` may choose (all_blocks saves little more than
# blocks_1_3).
AUTO_REMATS = ('none', 'blocks_1_2', 'blocks_1_3')
# Window sizes `config.memory.tile_size=0` may choose.
AUTO_TILE_SIZES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256)


@dataclasses.dataclass(frozen=True)
class Workload:
  """What one device runs, as far as memory goes.

  Attributes:
    size: (height, width) of the largest scale.
    pairs: pairs per device.
    group: pairs per device whose steps run at once (vmapped).
    style_sizes: (height, width) of each style image at the largest scale.
    layers: the layers the objective reads.
    optimizer: the optimizer (its state's shapes come from `jax.eval_shape`).
    target_bytes: bytes of one pair's targets at the largest scale, untiled.
    dtype_bytes: bytes per activation (4 for float32, 2 for bfloat16).
    param_bytes: bytes of the network's weights.
    tileable: whether every loss term can be computed in tiles (`terms.tileable`).
    guide_channels: the channels of each pair's guide images, all together.
  """

  size: tuple[int, int]
  pairs: int
  group: int
  style_sizes: tuple[tuple[int, int], ...]
  layers: tuple[str, ...]
  optimizer: Optimizer
  target_bytes: int
  dtype_bytes: int = 4
  param_bytes: int = 80_000_000
  tileable: bool = True
  guide_channels: int = 0


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Predicted peak bytes of a run, and its parts (bytes), for messages and tests."""

  total: float
  parts: dict[str, float]

  def describe(self) -> str:
    parts = ', '.join(f'{name} {_gb(value)}' for name, value in self.parts.items() if value)
    return f'{_gb(self.total)} ({parts})'


def workload(
  base: objective.Objective,
  params: Any,
  optimizer: Optimizer,
  layout: PairLayout,
  groups: PairGroups,
  sizes: Sequence[tuple[int, int]],
  styles: Sequence[jax.Array],
  guide_channels: Mapping[str, int] | None = None,
) -> Workload:
  """The `Workload` of a prepared batch: `sizes` of the scales, `styles` at the final size,
  and the channels of the pairs' guides (`{name: C}`)."""
  size = tuple(sizes[-1])
  pairs = layout.local_size * len(layout.counts) // layout.mesh.size
  layers = base.layers

  dtype = jnp.dtype(getattr(base.model, 'dtype', jnp.float32))
  return Workload(
    size=size,
    pairs=pairs,
    group=groups.size,
    style_sizes=tuple(tuple(s.shape[:2]) for s in styles),
    layers=layers,
    optimizer=optimizer,
    target_bytes=targets.target_bytes(base, params, size, guide_channels),
    dtype_bytes=dtype.itemsize,
    param_bytes=_tree_bytes(params),
    tileable=all(tileable(term) for _, term in base.terms),
    guide_channels=sum((guide_channels or {}).values()),
  )


def _tree_bytes(tree: Any) -> int:
  return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def optimizer_state_bytes(optimizer: Optimizer, size: tuple[int, int]) -> int:
  """Bytes of the optimizer's state for one image of `size` (exact, from `jax.eval_shape`)."""
  image = jax.ShapeDtypeStruct((*size, 3), jnp.float32)
  return _tree_bytes(jax.eval_shape(optimizer.transform.init, image))


def _depth_factor(layers: Sequence[str]) -> float:
  # Networks that stop in block 1 or 2 keep less than the measured VGG19 through relu5_1.
  deepest = max((int(name[4]) for name in layers), default=0)
  return {0: 0.0, 1: 0.5, 2: 0.75}.get(deepest, 1.0)


def estimate(work: Workload, remat: str, tiling: tiles.Tiling | None) -> Estimate:
  """Predicted peak bytes of a run of `work` with `remat` and `tiling` (None: untiled)."""
  pixels = work.size[0] * work.size[1]
  image_bytes = pixels * 3 * 4
  activation = work.dtype_bytes / 4 * _depth_factor(work.layers)
  opt_bytes = optimizer_state_bytes(work.optimizer, work.size)
  # LoopState: images, average, last_finite, first_bad, the optimizer's state, the targets.
  targets = image_bytes if tiling else work.target_bytes
  state = work.pairs * (4 * image_bytes + opt_bytes + targets)
  if tiling is None:
    network = work.group * pixels * REMAT_COSTS[remat].step_bytes_per_pixel * activation
    # Targets: every pair's content at once, then each style, forward only.
    largest_style = max((h * w for h, w in work.style_sizes), default=0)
    forward = max(work.pairs * pixels, largest_style) * FORWARD_BYTES_PER_PIXEL * activation
  else:
    windows = [tiling.axis(n)[0] for n in work.size]
    window_pixels = windows[0] * windows[1]
    network = work.group * (
      window_pixels * REMAT_COSTS[remat].step_bytes_per_pixel * activation
      + pixels * TILED_BYTES_PER_PIXEL
    )
    style_windows = [tiling.axis(h)[0] * tiling.axis(w)[0] for h, w in work.style_sizes] or [0]
    forward = max(window_pixels, *style_windows) * FORWARD_BYTES_PER_PIXEL * activation
  # The inputs on the device: each pair's content, colour-controlled content and guides, and
  # each style.
  inputs = work.pairs * (2 * image_bytes + pixels * work.guide_channels * 4)
  inputs += sum(h * w * 12 for h, w in work.style_sizes)
  parts = {
    'runtime': RUNTIME_BYTES + 2 * work.param_bytes,
    'inputs': inputs,
    'state': STATE_COPIES * state,
    'network': max(network, forward),
  }
  return Estimate(sum(parts.values()), parts)


def available_bytes(device: jax.Device | None = None) -> float:
  """Memory this process may use on `device` (default: the first): an accelerator's free
  memory, or on a CPU the host's available memory (and the cgroup's limit, if lower) plus what
  this process already holds."""
  device = device or jax.devices()[0]
  stats = device.memory_stats() if device.platform != 'cpu' else None
  if stats and 'bytes_limit' in stats:
    return float(stats['bytes_limit'] - stats.get('bytes_in_use', 0))
  held = resident_bytes()
  candidates = [_meminfo_available() + held]
  limit = _cgroup_free()
  if limit is not None:
    candidates.append(limit + held)
  return float(min(candidates))


def _meminfo_available() -> float:
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return float(line.split()[1]) * 1024
  except OSError:
    pass
  return float(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))


def _cgroup_free() -> float | None:
  try:
    with open('/sys/fs/cgroup/memory.max') as f:
      limit = f.read().strip()
    if limit == 'max':
      return None
    with open('/sys/fs/cgroup/memory.current') as f:
      return float(limit) - float(f.read().strip())
  except (OSError, ValueError):
    return None


def resident_bytes() -> int:
  """This process's resident memory in bytes (Linux's /proc/self/statm; 0 where unreadable)."""
  try:
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
  except (OSError, ValueError, IndexError):
    return 0


@dataclasses.dataclass(frozen=True)
class Plan:
  """The settings a run uses, and why.

  Attributes:
    remat: the `VGG19.remat` policy.
    tiling: the windows, or None for whole images.
    estimate: the predicted peak of this plan.
    available: bytes available (`config.memory.budget_gb` or `available_bytes()`).
  """

  remat: str
  tiling: tiles.Tiling | None
  estimate: Estimate
  available: float

  def describe(self, work: Workload) -> str:
    where = 'whole images'
    if self.tiling is not None:
      margin = 'exact' if self.tiling.exact else 'approximate'
      where = (
        f'tiles of {self.tiling.tile_size} px ({self.tiling.windows(work.size)} windows, '
        f'{margin} margin {self.tiling.margin} px)'
      )
    return (
      f'{work.size[0]}x{work.size[1]}, {work.pairs} pair(s) per device: remat={self.remat!r}, '
      f'{where}; estimated peak {self.estimate.describe()} of {_gb(self.available)} available'
    )


def cost(work: Workload, remat: str, tiling: tiles.Tiling | None) -> float:
  """Relative time of a step: pixels the network runs on per step, weighted by the remat."""
  if tiling is None:
    pixels = work.size[0] * work.size[1]
  else:
    (h, rows), (w, cols) = (tiling.axis(n) for n in work.size)
    pixels = TILED_COST * rows * cols * h * w
  return pixels * REMAT_COSTS[remat].step_time


def plan(config: ml_collections.ConfigDict, work: Workload, available: float | None = None) -> Plan:
  """The remat policy and tiling for `work` under `config`, checked against the memory.

  `config.memory.remat='auto'` may choose any of `AUTO_REMATS`, and `config.memory.tile_size=0`
  any window of `AUTO_TILE_SIZES` (or none); of the choices that fit, the fastest (`cost`) wins,
  so whole images without remat where they fit. Explicit settings are used as they are.

  Raises:
    ConfigError: the run cannot fit; the message gives the estimate, the memory available and
      the settings that would fit.
  """
  if available is None:
    available = config.memory.budget_gb * GB if config.memory.budget_gb else available_bytes()
  remats = AUTO_REMATS if config.memory.remat == 'auto' else (config.memory.remat,)
  if config.memory.tile_size > 0:
    tilings = [tiles.make_tiling(config.memory.tile_size, config.memory.tile_margin, work.layers)]
  else:
    tilings = [None] + (_auto_tilings(config, work) if config.memory.tile_size == 0 else [])
  options = [(remat, tiling) for tiling in tilings for remat in remats]
  fitting = [o for o in options if estimate(work, *o).total <= HEADROOM * available]
  if not fitting:
    raise ConfigError(_cannot_fit(config, work, *options[-1], available))
  remat, tiling = min(fitting, key=lambda o: cost(work, *o))
  chosen = Plan(remat, tiling, estimate(work, remat, tiling), available)
  auto = []
  if config.memory.remat == 'auto':
    auto.append(f"config.memory.remat='auto' chose {chosen.remat!r}")
  if config.memory.tile_size == 0:
    auto.append(
      'config.memory.tile_size=0 chose '
      + (f'tiles of {chosen.tiling.tile_size} px' if chosen.tiling else 'whole images')
    )
  logging.info('Memory: %s%s', chosen.describe(work), f' ({"; ".join(auto)})' if auto else '')
  return chosen


def _auto_tilings(config: ml_collections.ConfigDict, work: Workload) -> list[tiles.Tiling]:
  if not work.tileable:
    return []
  out = []
  for size in AUTO_TILE_SIZES:
    if size >= max(work.size):
      continue
    try:
      out.append(tiles.make_tiling(size, config.memory.tile_margin, work.layers))
    except ConfigError:  # Too small for the margins.
      break
  return out


def _gb(value: float) -> str:
  return f'{value / GB:.2f} GB' if value < GB else f'{value / GB:.1f} GB'


def _cannot_fit(
  config: ml_collections.ConfigDict,
  work: Workload,
  remat: str,
  tiling: tiles.Tiling | None,
  available: float,
) -> str:
  need = estimate(work, remat, tiling)
  settings = f'remat={remat!r}, ' + (f'tile_size={tiling.tile_size}' if tiling else 'untiled')
  # The cheapest settings of the fields that help which would fit.
  alternatives = [(r, None) for r in REMAT_POLICIES]
  if work.tileable:
    for size in (2048, 1024, 512):
      try:
        tiling_ = tiles.make_tiling(size, config.memory.tile_margin, work.layers)
      except ConfigError:
        continue
      alternatives += [(r, tiling_) for r in REMAT_POLICIES]
  fitting = [a for a in alternatives if estimate(work, *a).total <= HEADROOM * available]
  hints = []
  if fitting:
    r, t = min(fitting, key=lambda a: cost(work, *a))
    hints.append(
      f'config.memory.remat={r!r}'
      + (f', config.memory.tile_size={t.tile_size}' if t else ', config.memory.tile_size=-1')
      + f' (about {_gb(estimate(work, r, t).total)})'
    )
  if work.group > 1:
    hints.append(f'config.devices.pair_group_size=1 (now {work.group} pairs at once per device)')
  if not fitting and work.optimizer.line_search:
    hints.append(
      "config.optim.name='adam' or a smaller config.optim.lbfgs_memory (the optimizer's state "
      f'dominates: {_gb(need.parts["state"])})'
    )
  if not fitting:
    hints.append('more devices, fewer pairs per device, or a smaller config.image_size')
  return (
    f'{work.size[0]}x{work.size[1]} with {work.pairs} pair(s) per device needs about '
    f'{need.describe()} with {settings}, but {_gb(available)} is available '
    f'(config.memory.budget_gb={config.memory.budget_gb:g}; 0 means the free memory, of which a '
    f'run may plan to use {HEADROOM:.0%}); try ' + '; or '.join(hints)
  )
