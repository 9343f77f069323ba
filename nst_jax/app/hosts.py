"""Devices and processes: starting `jax.distributed` on a cluster, and logging what runs where."""

import collections
import os
from collections.abc import Mapping
from typing import Any

import jax
from absl import flags, logging

from nst_jax.errors import ConfigError
from nst_jax.run.pairs import Distributed


def define_multihost_flags() -> None:
  """--multihost / --nomultihost and the explicit `jax.distributed.initialize` arguments."""
  flags.DEFINE_boolean(
    'multihost',
    None,
    'Run as one of several processes (jax.distributed); default: when SLURM (srun) or Open MPI '
    'launched several tasks, or the addresses below are given. --nomultihost never.',
  )
  flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (jax.distributed).')
  flags.DEFINE_integer('num_processes', None, 'Number of processes (jax.distributed).')
  flags.DEFINE_integer('process_id', None, 'Index of this process (jax.distributed).')


def multihost_flag_values() -> dict[str, Any]:
  """The flags of `define_multihost_flags`, as keyword arguments of `setup_devices`."""
  names = ('multihost', 'coordinator_address', 'num_processes', 'process_id')
  return {name: flags.FLAGS[name].value for name in names}


def cluster_detected(environ: Mapping[str, str] | None = None) -> bool:
  """Whether this process is one task of several launched by SLURM (srun) or Open MPI (mpirun)."""
  environ = os.environ if environ is None else environ

  def count(*names: str) -> int:
    for name in names:
      value = environ.get(name, '').strip()
      if value.isdigit():
        return int(value)
    return 1

  slurm = 'SLURM_JOB_ID' in environ and count('SLURM_STEP_NUM_TASKS', 'SLURM_NTASKS') > 1
  return slurm or count('OMPI_COMM_WORLD_SIZE') > 1


def setup_devices(
  *,
  multihost: bool | None = None,
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> Distributed:
  """Starts `jax.distributed` when asked or when a cluster is detected, and logs the devices.

  Args:
    multihost: True to initialise `jax.distributed` (addresses auto-detected unless given),
      False never to, None to do so when `cluster_detected()` or the addresses are given.
    coordinator_address, num_processes, process_id: passed to `jax.distributed.initialize`.
  """
  explicit = [coordinator_address, num_processes, process_id]
  if multihost is False and any(v is not None for v in explicit):
    raise ConfigError(
      '--nomultihost contradicts --coordinator_address/--num_processes/--process_id'
    )
  if multihost is None:
    multihost = any(v is not None for v in explicit) or cluster_detected()
  if multihost:
    logging.info(
      'Initialising jax.distributed (%s)',
      'explicit' if any(v is not None for v in explicit) else 'auto-detected',
    )
    # CPU-only processes (tests, clusters without accelerators) need a collectives backend.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    try:
      jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
      )
    except (RuntimeError, ValueError) as e:
      raise ConfigError(f'--multihost: jax.distributed.initialize failed: {e}') from None
  devices = jax.devices()
  kinds = collections.Counter(f'{d.platform}:{d.device_kind}' for d in devices)
  logging.info(
    'JAX %s, process %d of %d; %d device(s) (%d local): %s',
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    len(devices),
    jax.local_device_count(),
    ', '.join(f'{n} x {kind}' for kind, n in kinds.items()),
  )
  return Distributed(jax.process_index(), jax.process_count())
