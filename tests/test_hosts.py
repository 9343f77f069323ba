"""Tests for nst_jax.app.hosts: cluster detection and jax.distributed settings."""

import pytest

from nst_jax.app import hosts
from nst_jax.errors import ConfigError


def test_cluster_detection():
  assert not hosts.cluster_detected({})
  assert not hosts.cluster_detected({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'})
  assert hosts.cluster_detected({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4'})
  # In an sbatch script (one process), the step has one task even if the job has several.
  assert not hosts.cluster_detected(
    {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4', 'SLURM_STEP_NUM_TASKS': '1'}
  )
  assert hosts.cluster_detected({'OMPI_COMM_WORLD_SIZE': '2'})


def test_nomultihost_with_addresses_is_refused():
  with pytest.raises(ConfigError, match='contradicts'):
    hosts.setup_devices(multihost=False, num_processes=2)
