"""Running the scripts as a user does, for the tests: a subprocess each, and its one error line."""

import os
import pathlib
import subprocess
import sys

from PIL import Image

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / 'scripts'
CONFIGS = SCRIPTS.parent / 'configs'
TINY = [
  '--config.image_size=32',
  '--config.schedule.num_steps=4',
  '--config.schedule.chunk_size=2',
  '--config.optim.name=adam',
]


def env_with_devices(count: int) -> dict[str, str]:
  """The environment for a subprocess that sees `count` CPU devices, with conftest's other flags."""
  xla_flags = os.environ['XLA_FLAGS'].replace('device_count=4', f'device_count={count}')
  return dict(os.environ, XLA_FLAGS=xla_flags)


def run(script, *args, cwd, timeout=300, env=None):
  return subprocess.run(
    [sys.executable, str(SCRIPTS / script), *map(str, args)],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def error_line(result) -> str:
  """The one `error:` line of a failed run; fails if there is a traceback or several lines."""
  assert 'Traceback' not in result.stderr, result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(lines) == 1, result.stderr
  return lines[0]


def size_of(path) -> tuple[int, int]:
  with Image.open(path) as image:
    return image.size
