"""The config files in configs/: each loads, validates, documents its command and does its job."""

import importlib.util
import pathlib

import ml_collections
import pytest

import nst_jax
from nst_jax.app import script
from nst_jax.run import config as config_lib

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
NAMES = ('default', 'fast', 'hq', 'seed', 'grid', 'pastiche', 'hires', 'nnst', 'sliced')


def load(name: str):
  spec = importlib.util.spec_from_file_location(f'configs_{name}', CONFIGS / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def changes(config: ml_collections.ConfigDict) -> dict:
  """The fields that differ from `default_config()`."""
  default = config_lib.default_config().to_dict()
  return {k: v for k, v in config.to_dict().items() if default[k] != v}


def test_every_config_file_is_tested():
  assert sorted(p.stem for p in CONFIGS.glob('*.py')) == sorted(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_config_loads_validates_and_documents_its_command(name):
  module = load(name)
  config = module.get_config()
  assert isinstance(config, ml_collections.ConfigDict)
  script.check_config_fields(config, name)  # Same fields as the default: started from it.
  config_lib.validate(config)
  doc = module.__doc__
  assert 'python scripts/' in doc and f'configs/{name}.py' in doc.replace('\\\n', ''), doc


def test_default_is_the_library_default():
  assert changes(load('default').get_config()) == {}


def test_fast_is_a_quick_adam_preview():
  config = load('fast').get_config()
  assert config.image_size == 256 and config.optimizer == 'adam'
  assert 100 <= config.num_steps <= 150 and 0.02 <= config.learning_rate <= 0.05
  assert config.num_scales == 1
  # The loss weights stay the library's, so tuning them there carries over.
  assert dict(config.terms) == dict(nst_jax.default_config().terms)


def test_hq_combines_nearest_neighbours_sliced_and_self_similarity():
  config = load('hq').get_config()
  assert config.image_size >= 512 and config.num_scales >= 2
  assert config.style_loss == 'nearest_neighbor' and config.terms.style > 0
  assert config.terms.sliced > 0 and config.content_loss == 'self_similarity'
  assert config.terms.content > 0
  built = nst_jax.terms_from_config(config)
  assert set(built) == {'content', 'style', 'sliced'}
  assert built['style'].refresh is not None and built['style'].style_views


def test_nnst_matches_coarse_to_fine_with_nnst_colours():
  config = load('nnst').get_config()
  assert config.style_loss == 'nearest_neighbor' and config.num_scales >= 3
  assert config.color_control == 'nnst' and config.nn_augment == 'rotations'
  assert config.nn_rematch_every > 0 and 0 < config.nn_content_mix < 1
  assert set(nst_jax.terms_from_config(config)) == {'style'}  # Matching alone, as NNST.


def test_sliced_redraws_its_directions():
  config = load('sliced').get_config()
  assert config.style_loss == 'sliced' and not config.sliced_fixed_directions
  assert nst_jax.terms_from_config(config)['style'].stochastic


def test_seed_is_the_tensorflow_tutorial_setup():
  config = load('seed').get_config()
  assert config.init == 'noise' and config.normalize_terms
  assert config.terms.tv > 0 and config.tv_kind == 'l1' and config.optimizer == 'adam'


def test_grid_is_moderate():
  config = load('grid').get_config()
  assert 256 <= config.image_size <= 512
  assert config.num_steps < nst_jax.default_config().num_steps


def test_pastiche_is_pastiches_objective():
  config = load('pastiche').get_config()
  assert dict(config.content_layers) == {'relu4_2': 1.0} and config.terms.content == 0.01
  assert config.style_layers.relu1_1 == 10 / 64**2 and config.style_layers.relu5_1 == 10 / 512**2
  assert config.optimizer == 'lbfgs' and config.init == 'content' and config.terms.style == 1.0


def test_hires_spends_most_steps_at_low_resolution_with_remat_and_tiles():
  from nst_jax.run import schedule

  config = load('hires').get_config()
  sizes = schedule.scale_sizes((config.image_size, config.image_size), config)
  steps = schedule.steps_per_scale(config)
  assert sizes[0] == (512, 512) and sizes[-1] == (4096, 4096)
  assert steps[-1] < steps[0] and sum(steps[:-1]) >= 10 * steps[-1]
  assert config.remat != 'none' and config.tile_size == 0  # Tiles where the plan needs them.
