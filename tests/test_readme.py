"""The README's custom-loss-term example runs as written."""

import pathlib
import re

import numpy as np
import pytest

import nst_jax

README = pathlib.Path(__file__).resolve().parents[1] / 'README.md'


@pytest.mark.weights
def test_custom_term_example_runs(vgg19_params):
  text = README.read_text()
  section = text[text.index('### Your own loss term') :]
  code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  config = nst_jax.default_config()
  config.update(image_size=32, num_steps=2, chunk_size=2, optimizer='adam')
  config.content_layers = {'relu2_1': 1.0}
  config.style_layers = {'relu1_1': 1.0}
  rng = np.random.default_rng(0)
  namespace = {
    'nst_jax': nst_jax,
    'config': config,
    'contents': rng.uniform(size=(2, 32, 32, 3)).astype(np.float32),
    'styles': [rng.uniform(size=(32, 32, 3)).astype(np.float32)] * 2,
  }
  exec(code, namespace)
  history = namespace['result'].history
  assert set(history.terms) == {'content', 'style', 'edges'}
  assert np.isfinite(history.terms['edges']).all()


@pytest.mark.weights
def test_style_objectives_example_runs(vgg19_params):
  text = README.read_text()
  section = text[text.index('### Style objectives beyond Gram') :]
  code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  rng = np.random.default_rng(0)
  namespace = {
    'contents': rng.uniform(size=(1, 40, 40, 3)).astype(np.float32),
    'styles': [rng.uniform(size=(40, 40, 3)).astype(np.float32)],
  }
  exec(code, namespace)
  for name in ('sw', 'sw_fixed', 'nn'):
    assert np.isfinite(namespace[name]) and namespace[name] > 0, name
  assert abs(float(namespace['ss'])) < 1e-6  # An image's self-similarity matches its own.
