"""Where the pairs live: the device mesh, padding, sharding, pair groups, gathering, and each
process's share of a batch.

A batch of B (content, styles) pairs has a leading pair axis. It is padded (by repeating the last
pair) to a multiple of the devices and sharded over a 1-D `Mesh` with axis `PAIRS`. On each
device its pairs run in groups (`PairGroups`): vmapped within a group, one group after another.
In a multi-process run (`jax.distributed`) each process passes only its own pairs, and their
global order is process 0's, then process 1's, and so on.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nst_jax.errors import ConfigError

PAIRS = 'pairs'  # Name of the mesh axis that the pair axis is sharded over.


@dataclasses.dataclass(frozen=True)
class Distributed:
  """Where this process stands: `process_index` of `process_count` (1 without --multihost)."""

  process_index: int = 0
  process_count: int = 1

  @property
  def is_writer(self) -> bool:
    return self.process_index == 0


class ProcessShare(NamedTuple):
  """The rows of a batch that one process loads and passes to `stylize`.

  Attributes:
    rows: indices into the batch.
    duplicate: True for a process left without pairs of its own (fewer pairs than processes):
      it repeats the batch's last pair, whose result comes after every real one.
  """

  rows: range
  duplicate: bool

  def take(self, pairs: Sequence[Any]) -> list[Any]:
    return [pairs[r] for r in self.rows]


def process_share(num_pairs: int, dist: Distributed) -> ProcessShare:
  """This process's contiguous block of a batch: `ceil(num_pairs / process_count)` pairs each.

  `stylize` orders each process's pairs process by process (and gives every process all
  results back), so contiguous blocks keep the batch's order.
  """
  per_process = math.ceil(num_pairs / dist.process_count)
  start = min(num_pairs, dist.process_index * per_process)
  stop = min(num_pairs, start + per_process)
  if start == stop:
    return ProcessShare(range(num_pairs - 1, num_pairs), True)
  return ProcessShare(range(start, stop), False)


def make_mesh(num_pairs: int, num_devices: int) -> Mesh:
  """A 1-D mesh over `num_devices` devices (0: as many as there are pairs, up to all)."""
  devices = jax.devices()
  if num_devices > len(devices):
    raise ConfigError(
      f'config.devices.count={num_devices} but only {len(devices)} device(s) are available'
    )
  if num_devices and num_pairs % num_devices:
    raise ConfigError(
      f'a batch of {num_pairs} pairs cannot be split evenly over config.devices.count='
      f'{num_devices} devices; use a multiple of {num_devices} pairs or num_devices=0 (pads)'
    )
  count = num_devices or min(len(devices), num_pairs)
  return Mesh(np.asarray(devices[:count]), (PAIRS,))


@dataclasses.dataclass(frozen=True)
class PairGroups:
  """The pair axis, sharded over `mesh`, in groups of `size` pairs on every device.

  Attributes:
    mesh: the pair axis is sharded over its devices, in contiguous blocks.
    size: pairs per group (dividing each device's pairs); groups run one after another.
  """

  mesh: Mesh
  size: int

  def map(self, fn: Callable[..., Any], *args: Any) -> Any:
    """`jax.vmap(fn)(*args)` over the leading (pair) axis of `args`, computed group by group.

    Each device maps over its own pairs (`shard_map`), so nothing moves between devices; groups of
    one pair are not vmapped at all, so that `lax.cond`s in `fn` stay conditional.
    """
    per_device = jax.tree.leaves(args)[0].shape[0] // self.mesh.size
    if 1 < per_device <= self.size:  # One group: all pairs at once.
      return jax.vmap(fn)(*args)

    def local(*local_args):
      if per_device == 1:
        out = fn(*jax.tree.map(lambda x: x[0], local_args))
        return jax.tree.map(lambda y: y[None], out)
      if self.size == 1:
        return jax.lax.map(lambda a: fn(*a), local_args)
      split = lambda x: x.reshape(-1, self.size, *x.shape[1:])  # noqa: E731
      out = jax.lax.map(lambda a: jax.vmap(fn)(*a), jax.tree.map(split, local_args))
      return jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:]), out)

    if self.mesh.size == 1:
      return local(*args)
    specs = tuple(P(PAIRS) for _ in args)
    # No replication checks: every value is per pair, and optax's line search trips them.
    mapped = jax.shard_map(
      local, mesh=self.mesh, in_specs=specs, out_specs=P(PAIRS), check_vma=False
    )
    return mapped(*args)

  def constrain(self, tree: Any) -> Any:
    """Inside `jit`: `tree`'s arrays sharded over the pair axis (scalars replicated), so that a
    program's outputs stay where the next program expects them."""

    def place(x):
      spec = P(PAIRS) if x.ndim else P()
      return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))

    return jax.tree.map(place, tree)

  def one_at_a_time(self) -> 'PairGroups':
    """The same layout with groups of one pair."""
    return dataclasses.replace(self, size=1)


class PairLayout(NamedTuple):
  """Each process's pairs, padded to `local_size`, sharded over `mesh`.

  Attributes:
    mesh: the 1-D device mesh of the pair axis.
    counts: real pairs of each process.
    local_size: pairs per process after padding (a multiple of its devices in the mesh).
  """

  mesh: Mesh
  counts: tuple[int, ...]
  local_size: int

  @classmethod
  def create(cls, num_local: int, num_devices: int) -> 'PairLayout':
    """The layout of `num_local` pairs in this process over `num_devices` (0: all) devices."""
    if jax.process_count() == 1:
      mesh = make_mesh(num_local, num_devices)
      return cls(mesh, (num_local,), mesh.size * math.ceil(num_local / mesh.size))
    if num_devices not in (0, jax.device_count()):
      raise ConfigError(
        f'config.devices.count={num_devices}: a multi-process run uses all '
        f'{jax.device_count()} devices (set 0)'
      )
    counts = multihost_utils.process_allgather(np.int32(num_local))
    local_devices = jax.local_device_count()
    mesh = Mesh(np.asarray(jax.devices()), (PAIRS,))
    return cls(
      mesh, tuple(map(int, counts)), local_devices * math.ceil(max(counts) / local_devices)
    )

  @property
  def first(self) -> int:
    """Global index of this process's first pair."""
    return sum(self.counts[: jax.process_index()])

  def shard(self, tree: Any) -> Any:
    """This process's pairs (leading axis) padded and sharded; scalars replicated."""
    pairs, replicated = NamedSharding(self.mesh, P(PAIRS)), NamedSharding(self.mesh, P())

    def place(x):
      x = np.asarray(x) if jax.process_count() > 1 else jnp.asarray(x)
      if x.ndim == 0:
        return jax.make_array_from_process_local_data(replicated, x)
      if x.shape[0] < self.local_size:  # Pad by repeating the last pair.
        x = jnp.concatenate([x, jnp.repeat(x[-1:], self.local_size - x.shape[0], axis=0)])
      return jax.make_array_from_process_local_data(pairs, x)

    return jax.tree.map(place, tree)

  def replicate(self, tree: Any) -> Any:
    """`tree` on every device of the mesh."""
    sharding = NamedSharding(self.mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)

  def pair_groups(self, group_size: int) -> PairGroups:
    """How each device's pairs are grouped for `group_size` (`config.devices.pair_group_size`)."""
    per_device = self.local_size * len(self.counts) // self.mesh.size
    if not group_size:
      group_size = 1 if self.mesh.devices.flat[0].platform == 'cpu' else per_device
    # The largest group size that divides the device's pairs, so that every group is full.
    size = max(d for d in range(1, min(group_size, per_device) + 1) if per_device % d == 0)
    return PairGroups(self.mesh, size)

  def gather(self, x: jax.Array, axis: int = 0, local: bool = False) -> np.ndarray:
    """The real pairs of a sharded array on the host: every process's, or only this one's."""
    x = jnp.moveaxis(x, axis, 0) if axis else x
    if jax.process_count() == 1:
      full = np.asarray(x)[: self.counts[0]]
    elif local:
      shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
      full = np.concatenate([np.asarray(s.data) for s in shards])[
        : self.counts[jax.process_index()]
      ]
    else:
      full = multihost_utils.process_allgather(x, tiled=True)
      full = full.reshape(len(self.counts), self.local_size, *full.shape[1:])
      full = np.concatenate([full[p, :count] for p, count in enumerate(self.counts)])
    return np.moveaxis(full, 0, axis) if axis else full
