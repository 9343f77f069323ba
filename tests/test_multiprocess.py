"""Two local processes (jax.distributed over CPU devices) give the single-process result."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from script_runs import env_with_devices

import nst_jax

pytestmark = [pytest.mark.weights, pytest.mark.slow]

# Each process stylizes its own two pairs; the engine shards all four over both processes'
# devices, and every process gets all four results back.
WORKER = textwrap.dedent("""
  import sys
  import jax
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
  import numpy as np
  import nst_jax
  sys.path.insert(0, sys.argv[3])
  from test_multiprocess import inputs, small_config
  contents, styles, weights = inputs()
  mine = slice(2 * jax.process_index(), 2 * jax.process_index() + 2)
  result = nst_jax.stylize(contents[mine], styles, small_config(), style_weights=weights[mine])
  np.savez(sys.argv[4], devices=jax.device_count(), images=result.images,
           total=result.history.total)
""")


def inputs():
  rng = np.random.default_rng(0)
  contents = rng.uniform(size=(4, 32, 32, 3)).astype(np.float32)
  styles = [rng.uniform(size=(32, 32, 3)).astype(np.float32) for _ in range(2)]
  weights = np.array([[1, 0], [0, 1], [1, 1], [0, 1]], np.float32)
  return contents, styles, weights


def small_config():
  config = nst_jax.default_config()
  config.image_size = 32
  config.schedule.num_steps, config.schedule.chunk_size = 4, 2
  config.optim.name, config.init.kind = 'adam', 'noise'
  config.losses.content.layers = {'relu2_1': 1.0}
  config.losses.gram.layers = {'relu1_1': 0.5, 'relu2_1': 0.5}
  config.losses.gram.weight = 1e-3
  config.normalize_losses = False
  return config


def test_two_processes_equal_one(vgg19_params, tmp_path):
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    address = f'127.0.0.1:{s.getsockname()[1]}'
  env = env_with_devices(2)
  here = os.path.dirname(__file__)
  logs = [open(tmp_path / f'{i}.log', 'w') for i in range(2)]  # noqa: SIM115
  workers = [
    subprocess.Popen(
      [sys.executable, '-c', WORKER, address, str(i), here, str(tmp_path / f'{i}.npz')],
      env=env,
      stdout=log,
      stderr=log,
    )
    for i, log in enumerate(logs)
  ]
  for i, (worker, log) in enumerate(zip(workers, logs, strict=True)):
    returncode = worker.wait(timeout=600)
    log.close()
    assert returncode == 0, (tmp_path / f'{i}.log').read_text()[-3000:]
  results = [np.load(tmp_path / f'{i}.npz') for i in range(2)]
  assert [int(r['devices']) for r in results] == [4, 4]

  contents, styles, weights = inputs()
  config = small_config()
  config.devices.count = 1
  alone = nst_jax.stylize(
    contents, styles, config, style_weights=weights, network=(nst_jax.VGG19(), vgg19_params)
  )
  for result in results:
    np.testing.assert_allclose(result['images'], alone.images, atol=2e-5)
    np.testing.assert_allclose(result['total'], alone.history.total, rtol=1e-4)
