"""The code snippets of the README and the docs run as written."""

import pathlib
import re

import numpy as np
import pytest

import nst_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _snippet(path: str, heading: str) -> str:
  """The first Python code block in the section of `path` under the Markdown heading `heading`."""
  level, lines, in_code = None, [], False
  for line in (ROOT / path).read_text().splitlines(keepends=True):
    if line.startswith('```'):
      in_code = not in_code
    marks = re.match(r'(#+) ', line) if not in_code else None
    if level is None:
      if marks and line[marks.end() :].strip() == heading:
        level = len(marks.group(1))
    elif marks and len(marks.group(1)) <= level:
      break  # The next section at the same or a higher level.
    else:
      lines.append(line)
  assert level is not None, f'{path} has no heading {heading!r}'
  code = re.search(r'```python\n(.*?)```', ''.join(lines), re.S)
  assert code, f'{path}, {heading!r}: no Python code block in the section'
  return code.group(1)


@pytest.mark.weights
def test_custom_loss_example_runs(vgg19_params):
  code = _snippet('README.md', 'Your own loss, in ten lines')
  config = nst_jax.default_config()
  config.image_size = 32
  config.schedule.num_steps = 2
  config.schedule.chunk_size = 2
  config.optim.name = 'adam'
  config.losses.content.layers = {'relu2_1': 1.0}
  config.losses.gram.layers = {'relu1_1': 1.0}
  rng = np.random.default_rng(0)
  namespace = {
    'nst_jax': nst_jax,
    'config': config,
    'contents': rng.uniform(size=(2, 32, 32, 3)).astype(np.float32),
    'styles': [rng.uniform(size=(32, 32, 3)).astype(np.float32)] * 2,
  }
  exec(code, namespace)
  history = namespace['result'].history
  assert set(history.terms) == {'content', 'gram', 'edges'}
  assert np.isfinite(history.terms['edges']).all()


@pytest.mark.weights
def test_style_objectives_example_runs(vgg19_params):
  code = _snippet('docs/objectives.md', 'Style objectives beyond Gram')
  rng = np.random.default_rng(0)
  namespace = {
    'contents': rng.uniform(size=(1, 40, 40, 3)).astype(np.float32),
    'styles': [rng.uniform(size=(40, 40, 3)).astype(np.float32)],
  }
  exec(code, namespace)
  for name in ('sw', 'sw_fixed', 'nn'):
    assert np.isfinite(namespace[name]) and namespace[name] > 0, name
  assert abs(float(namespace['ss'])) < 1e-6  # An image's self-similarity matches its own.
