"""bfloat16 networks (`config.network.dtype='bfloat16'`): every loss, remat, tiles and the colour
modes run end to end, from Python and from the script, and land near float32's run.

The tolerances: bfloat16 keeps 8 significant bits, so each activation is off by up to 0.4%, and
the differences grow through the layers and the steps. On the small random network, after 8 Adam
steps, the objective differed from float32's by 0.2-0.8%, each weighted term by at most 0.4% of
the objective, and the images by at most 0.04 (measured when these tests were written); the
bounds below leave a margin. Tiled (4 windows of 32 px) from noise, after 4 steps, every colour
mode's objective was within 0.1% and each term within 0.1% of the objective. (A term near zero,
such as the content term near the content, can differ by more than its own size: its value is
then rounding; from the content, tiled, the objective differed by 7-13%.)
"""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import resample
from nst_jax.run import engine

TERM_TOLERANCE = 0.02  # Each weighted term's difference, relative to the objective.
TOTAL_TOLERANCE = 0.03  # Relative, the objective after the run.
IMAGE_TOLERANCE = 0.08  # Absolute, in [0, 1].
SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / 'scripts'


def _every_loss(*overrides: str):
  """`small_config` with every built-in loss on the small network's layers."""
  config = small_config('schedule.num_steps=8', 'schedule.chunk_size=8', *overrides)
  for name in ('gaussian', 'sliced', 'nearest_neighbor', 'self_similarity'):
    config.losses[name].weight = 1e-3
    config.losses[name].layers = {'relu1_1': 0.5, 'relu2_1': 0.5}
  config.losses.self_similarity.layers = {'relu2_1': 1.0}
  config.losses.tv.weight = 1e-2
  config.optim.learning_rate = 0.003  # Small steps: the objective falls at every size here.
  return config


def _relative(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a) - b) / np.abs(b)))


def _assert_near(result, reference, config, image_tolerance=IMAGE_TOLERANCE):
  """`result` (bfloat16) within the stated tolerances of `reference` (float32) after the run;
  `image_tolerance` None: the images are not compared."""
  weights = {name: entry.weight for name, entry in config.losses.items() if entry.weight > 0}
  assert set(result.history.terms) == set(reference.history.terms) == set(weights)
  assert np.isfinite(result.history.total).all()
  total = reference.history.total[-1]
  for name, weight in weights.items():
    ours, theirs = result.history.terms[name][-1], reference.history.terms[name][-1]
    assert np.all(weight * np.abs(ours - theirs) < TERM_TOLERANCE * total), (name, ours, theirs)
  assert _relative(result.history.total[-1], total) < TOTAL_TOLERANCE
  if image_tolerance is not None:
    assert np.abs(result.images - reference.images).max() < image_tolerance


@pytest.mark.slow
def test_every_loss_in_bfloat16_stays_near_float32(random_network):
  """All seven losses in one objective; the bfloat16 run also recomputes every block (remat)."""
  model, params = random_network
  contents, styles = small_pairs()
  config = _every_loss()
  reference = nst_jax.stylize(contents[:1], styles[:1], config, network=(model, params))
  config.memory.remat = 'all_blocks'
  result = nst_jax.stylize(
    contents[:1], styles[:1], config, network=(model.clone(dtype=jnp.bfloat16), params)
  )
  _assert_near(result, reference, config)
  assert reference.history.total[-1, 0] < reference.history.total[0, 0]


# The colour modes are float32 transforms of the inputs and the result around the network:
# 'luminance_only' changes what the network sees and what comes back, 'nnst' recolours the result
# from palettes sharded with the pairs; 'preserve_colors' and 'match_style' are their halves.
COLOR_MODES = ('none', 'luminance_only', 'nnst')


@pytest.mark.parametrize('mode', COLOR_MODES)
def test_tiles_and_colour_modes_in_bfloat16(random_network, mode):
  """A tiled bfloat16 run (4 windows of 32 px) against the untiled float32 one, in every colour
  mode."""
  model, params = random_network
  contents, styles = small_pairs()
  contents = np.asarray(resample.resize(contents[:1], (40, 40)))
  config = small_config(
    'image_size=40', 'schedule.num_steps=4', 'schedule.chunk_size=4', f'color_control={mode}'
  )
  config.losses.tv.weight = 1e-2
  # From noise, so that no term starts near zero (where bfloat16's value is rounding). Adam then
  # moves every pixel by about the learning rate whatever its gradient's size, so pixels whose
  # gradient is near zero part ways (up to 0.1 here): the objective is the measure.
  config.init.kind = 'noise'
  reference = nst_jax.stylize(contents, styles[:1], config, network=(model, params))
  config.memory.tile_size = 32
  prepared = engine.prepare(
    contents, styles[:1], config, network=(model.clone(dtype=jnp.bfloat16), params)
  )
  assert prepared.plan.tiling.windows((40, 40)) == 4
  _assert_near(prepared.run(), reference, config, image_tolerance=None)


@pytest.mark.weights
def test_the_config_dtype_casts_the_weights_once_and_runs_lbfgs(vgg19_params):
  """From Python with the real weights: `config.network.dtype` alone selects bfloat16."""
  del vgg19_params  # The weights are fetched once per session; `prepare` loads them by name.
  contents, styles = small_pairs()
  config = nst_jax.default_config()
  config.image_size = 32
  config.schedule.num_steps, config.schedule.chunk_size = 3, 3
  config.network.dtype = 'bfloat16'
  prepared = engine.prepare(contents[:1], styles[:1], config)
  dtypes = {leaf.dtype for leaf in jax.tree.leaves(prepared.params)}
  assert dtypes == {jnp.dtype(jnp.bfloat16)}
  result = prepared.run()
  total = result.history.total[:, 0]
  assert np.isfinite(total).all() and total[-1] < total[0]
  assert result.images.dtype == np.float32 and 0 <= result.images.min() <= result.images.max() <= 1


@pytest.mark.weights
def test_the_script_runs_in_bfloat16(tmp_path, vgg19_params):
  """scripts/stylize.py with --config.network.dtype=bfloat16 and a colour mode writes its image."""
  del vgg19_params
  contents, styles = small_pairs()
  nst_jax.save_image(tmp_path / 'c.png', contents[0])
  nst_jax.save_image(tmp_path / 's.png', styles[0])
  done = subprocess.run(
    [
      sys.executable,
      str(SCRIPTS / 'stylize.py'),
      f'--content={tmp_path / "c.png"}',
      f'--style={tmp_path / "s.png"}',
      f'--output={tmp_path / "out.png"}',
      f'--config={SCRIPTS.parent / "configs" / "fast.py"}',
      '--config.image_size=32',
      '--config.schedule.num_steps=2',
      '--config.network.dtype=bfloat16',
      '--config.color_control=luminance_only',
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert done.returncode == 0 and 'Traceback' not in done.stderr, done.stderr
  image = nst_jax.load_image(tmp_path / 'out.png')
  assert image.shape == (32, 32, 3)
