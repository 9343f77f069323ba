"""The config files in configs/: each loads, validates, documents its command and does its job;
and the config helpers of nst_jax.run.config (files, overrides, renamed fields, loss entries)."""

import importlib.util
import pathlib

import ml_collections
import pytest

import nst_jax
from nst_jax.core import terms
from nst_jax.errors import ConfigError
from nst_jax.run import config as config_lib

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
PRESETS = ('default', 'fast', 'hq', 'seed', 'grid', 'hires', 'nnst', 'sliced', 'video')
# Not presets: other tools' objectives, to compare with them (configs/compare/).
COMPARISONS = ('compare/pastiche',)
NAMES = PRESETS + COMPARISONS


def load(name: str):
  module_name = 'configs_' + name.replace('/', '_')
  spec = importlib.util.spec_from_file_location(module_name, CONFIGS / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def flat(tree: dict, prefix: str = '') -> dict:
  """`{'a.b.c': value}` for a nested dict's leaves."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def changes(config: ml_collections.ConfigDict) -> dict:
  """The fields (dotted) that differ from `default_config()`."""
  default = flat(config_lib.default_config().to_dict())
  return {k: v for k, v in flat(config.to_dict()).items() if default.get(k) != v}


def test_every_config_file_is_tested():
  found = [str(p.relative_to(CONFIGS).with_suffix('')) for p in CONFIGS.rglob('*.py')]
  assert sorted(found) == sorted(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_config_loads_validates_and_documents_its_command(name):
  module = load(name)
  config = module.get_config()
  assert isinstance(config, ml_collections.ConfigDict)
  config_lib.check_fields(config, name)  # Same fields as the default: started from it.
  config_lib.validate(config)
  doc = module.__doc__
  assert 'python scripts/' in doc and f'configs/{name}.py' in doc.replace('\\\n', ''), doc


def test_default_is_the_library_default():
  assert changes(load('default').get_config()) == {}


def test_fast_is_a_quick_adam_preview():
  config = load('fast').get_config()
  assert config.image_size == 256 and config.optim.name == 'adam'
  schedule = config.schedule
  assert 100 <= schedule.num_steps <= 150 and 0.02 <= config.optim.learning_rate <= 0.05
  assert schedule.num_scales == 1
  # The loss weights stay the library's, so tuning them there carries over.
  assert config.losses.to_dict() == nst_jax.default_config().losses.to_dict()


def test_hq_combines_nearest_neighbours_sliced_self_similarity_and_a_light_content_term():
  config = load('hq').get_config()
  assert config.image_size >= 512 and config.schedule.num_scales >= 2
  losses = config.losses
  assert losses.nearest_neighbor.weight > 0 and losses.sliced.weight > 0
  assert losses.self_similarity.weight > 0
  assert 0 < losses.content.weight < losses.nearest_neighbor.weight
  built = nst_jax.terms_from_config(config)
  assert set(built) == {'nearest_neighbor', 'sliced', 'self_similarity', 'content'}
  assert built['nearest_neighbor'].refresh is not None and built['nearest_neighbor'].style_views


def test_nnst_matches_coarse_to_fine_with_gram_and_content_terms():
  config = load('nnst').get_config()
  nn = config.losses.nearest_neighbor
  assert nn.weight > 0 and config.schedule.num_scales >= 3 and nn.augment == 'rotations'
  assert nn.rematch_every > 0 and 0 < nn.content_mix < 1
  # NNST's colour post-process keeps the content's colour layout: the Gram term replaces it.
  assert config.color_control == 'none' and config.normalize_losses
  assert set(nst_jax.terms_from_config(config)) == {'nearest_neighbor', 'gram', 'content'}


def test_nnst_gives_back_nnst_own_recipe_with_its_docstring_overrides():
  config = load('nnst').get_config()
  for override in ('losses.gram.weight=0', 'losses.content.weight=0', 'color_control=nnst'):
    config_lib.apply_override(config, override)
  assert set(nst_jax.terms_from_config(config)) == {'nearest_neighbor'}
  assert config.color_control == 'nnst'


def test_sliced_redraws_its_directions():
  config = load('sliced').get_config()
  assert config.losses.sliced.weight > 0 and not config.losses.sliced.fixed_directions
  built = nst_jax.terms_from_config(config)
  assert set(built) == {'content', 'sliced'}  # The sliced loss replaces the Gram loss.
  assert built['sliced'].stochastic


def test_seed_is_the_tensorflow_tutorial_setup():
  config = load('seed').get_config()
  assert config.init.kind == 'noise' and config.normalize_losses
  assert config.losses.tv.weight > 0 and config.losses.tv.norm == 'l1'
  assert config.optim.name == 'adam'


def test_grid_is_moderate():
  config = load('grid').get_config()
  assert 256 <= config.image_size <= 512
  assert config.schedule.num_steps < nst_jax.default_config().schedule.num_steps


def test_pastiche_is_pastiches_objective():
  config = load('compare/pastiche').get_config()
  content, gram = config.losses.content, config.losses.gram
  assert dict(content.layers) == {'relu4_2': 1.0} and content.weight == 0.01
  assert gram.layers.relu1_1 == 10 / 64**2 and gram.layers.relu5_1 == 10 / 512**2
  assert config.optim.name == 'lbfgs' and config.init.kind == 'content' and gram.weight == 1.0


def test_hires_spends_most_steps_at_low_resolution_with_remat_and_tiles():
  from nst_jax.run import schedule

  config = load('hires').get_config()
  sizes = schedule.scale_sizes((config.image_size, config.image_size), config)
  steps = schedule.steps_per_scale(config)
  assert sizes[0] == (512, 512) and sizes[-1] == (4096, 4096)
  assert steps[-1] < steps[0] and sum(steps[:-1]) >= 10 * steps[-1]
  # Tiles where the plan needs them.
  assert config.memory.remat != 'none' and config.memory.tile_size == 0


# --- The config helpers --------------------------------------------------------------------------


def test_default_config_has_an_entry_for_every_registered_loss():
  config = nst_jax.default_config()
  assert set(config.losses) == {
    'content',
    'gaussian',
    'gram',
    'nearest_neighbor',
    'self_similarity',
    'sliced',
    'temporal',
    'tv',
  }
  weights = {name: entry.weight for name, entry in config.losses.items()}
  assert weights.pop('content') == 1.0 and weights.pop('gram') == 1.0
  assert config.normalize_losses  # The weights are relative importances.
  assert set(weights.values()) == {0.0}  # The others are left out.
  assert set(nst_jax.terms_from_config(config)) == {'content', 'gram'}


def test_loss_entries_own_their_layers():
  # Losses that start from the same layers must not share one mapping: changing gram's layers
  # leaves the other style losses', and the next default config's, alone.
  config = nst_jax.default_config()
  config.losses.gram.layers.relu1_1 = 0.7
  config.losses.content.layers.relu4_2 = 0.5
  assert config.losses.gaussian.layers.relu1_1 == 0.2
  assert config.losses.sliced.layers.relu1_1 == 0.2
  assert config.losses.self_similarity.layers.relu4_2 == 1.0
  assert nst_jax.default_config().losses.gram.layers.relu1_1 == 0.2


def test_from_file_names_the_new_place_of_an_old_flat_field(tmp_path):
  path = tmp_path / 'old.py'
  path.write_text(
    'from nst_jax.run import config as config_lib\n\n\n'
    'def get_config():\n'
    '  config = config_lib.default_config()\n'
    '  config.num_steps = 10\n'
    '  return config\n'
  )
  with pytest.raises(ConfigError, match=r'schedule\.num_steps'):
    config_lib.from_file(path)


def test_from_file_names_the_new_place_of_an_old_group(tmp_path):
  path = tmp_path / 'old_terms.py'
  path.write_text(
    'from nst_jax.run import config as config_lib\n\n\n'
    'def get_config():\n'
    '  config = config_lib.default_config()\n'
    '  config.terms.style = 1e-3\n'
    '  return config\n'
  )
  with pytest.raises(ConfigError, match=r'config\.terms was renamed.*losses\.NAME\.weight'):
    config_lib.from_file(path)


def test_from_file_refuses_a_missing_file_and_one_without_get_config(tmp_path):
  with pytest.raises(ConfigError, match='file not found'):
    config_lib.from_file(tmp_path / 'absent.py')
  empty = tmp_path / 'empty.py'
  empty.write_text('X = 1\n')
  with pytest.raises(ConfigError, match='defines no get_config'):
    config_lib.from_file(empty)


def test_check_fields_refuses_a_config_that_lacks_a_field():
  config = nst_jax.default_config()
  del config.schedule['plateau_steps']
  with pytest.raises(ConfigError, match='config.schedule lacks plateau_steps'):
    config_lib.check_fields(config, 'mine.py')
  config = nst_jax.default_config()
  config.schedule.steps = 3
  with pytest.raises(ConfigError, match="config.schedule has no field 'steps'"):
    config_lib.check_fields(config, 'mine.py')


def test_apply_override_reads_the_value_as_the_fields_type():
  config = nst_jax.default_config()
  config_lib.apply_override(config, 'schedule.num_steps=50')
  config_lib.apply_override(config, 'losses.gram.weight=1e-3')
  config_lib.apply_override(config, 'optim.warm_start=True')
  config_lib.apply_override(config, 'losses.sliced.relative=false')
  config_lib.apply_override(config, "losses.content.layers={'relu3_1': 0.5, 'relu4_2': 1.0}")
  config_lib.apply_override(config, 'optim.name=adam')
  assert config.schedule.num_steps == 50 and isinstance(config.schedule.num_steps, int)
  assert config.losses.gram.weight == 1e-3 and isinstance(config.losses.gram.weight, float)
  assert config.optim.warm_start is True and config.losses.sliced.relative is False
  assert config.losses.content.layers.to_dict() == {'relu3_1': 0.5, 'relu4_2': 1.0}
  assert config.optim.name == 'adam'
  config_lib.validate(config)


@pytest.mark.parametrize(
  'override, message',
  [
    ('schedule.num_steps=many', r"'many' is not a int for config\.schedule\.num_steps"),
    ('optim.warm_start=yes', r"'yes' is not a bool"),
    ('losses.content.layers=[1, 2]', r'is not a ConfigDict'),
    ('schedule.num_stepz=5', r"the config has no field 'schedule\.num_stepz'"),
    ('losses.nothing.weight=1', r"the config has no field 'losses\.nothing\.weight'"),
    ('num_steps=5', r'config\.num_steps was renamed: use config\.schedule\.num_steps'),
    ('memory_gb=2', r'use config\.memory\.budget_gb'),
    ('schedule.num_steps', r'is not FIELD=VALUE'),
  ],
)
def test_apply_override_refuses_bad_values_and_unknown_or_renamed_fields(override, message):
  with pytest.raises(ConfigError, match=message):
    config_lib.apply_override(nst_jax.default_config(), override)


def test_from_spec_applies_overrides_to_a_file():
  config = config_lib.from_spec(f'{CONFIGS / "fast.py"}@schedule.num_steps=7@init.kind=noise')
  assert config.schedule.num_steps == 7 and config.init.kind == 'noise'
  assert config.optim.name == 'adam'  # The file's own settings stay.
  with pytest.raises(ConfigError, match=r'config spec .*tolerance was renamed'):
    config_lib.from_spec(f'{CONFIGS / "fast.py"}@tolerance=0.1')


def test_renamed_field_names_the_new_place():
  assert 'config.schedule.plateau_tolerance' in config_lib.renamed_field('tolerance')
  assert 'config.devices.count' in config_lib.renamed_field('num_devices')
  assert config_lib.renamed_field('image_size') is None


def test_validate_names_the_loss_whose_options_are_bad():
  config = nst_jax.default_config()
  config.losses.tv.norm = 'l3'  # Checked although the loss is left out (weight 0).
  with pytest.raises(ConfigError, match=r'config\.losses\.tv'):
    config_lib.validate(config)
  config = nst_jax.default_config()
  config.losses.gram.weight = -1.0
  with pytest.raises(ConfigError, match=r'config\.losses\.gram\.weight=-1\.0'):
    config_lib.validate(config)
  config = nst_jax.default_config()
  config.losses.content.weight = 0.0
  config.losses.gram.weight = 0.0
  with pytest.raises(ConfigError, match='every weight is zero'):
    config_lib.validate(config)


def _brightness_term(target: float = 0.5, power: int = 2) -> terms.LossTerm:
  return terms.LossTerm(loss=lambda f, t: (f['image'].mean() - target) ** power)


@pytest.fixture
def brightness():
  nst_jax.register_loss('brightness', _brightness_term, target=0.6)
  yield
  nst_jax.unregister_loss('brightness')


def test_register_loss_adds_an_entry_with_weight_zero_and_its_defaults(brightness):
  config = nst_jax.default_config()
  assert config.losses.brightness.to_dict() == {'weight': 0.0, 'target': 0.6}
  assert 'brightness' not in nst_jax.terms_from_config(config)  # Weight 0: left out.
  config.losses.brightness.weight = 2.0
  built = nst_jax.terms_from_config(config)
  assert set(built) == {'content', 'gram', 'brightness'} and built['brightness'].weight == 2.0
  config_lib.check_fields(config)
  config_lib.validate(config)


def test_unregister_loss_removes_the_entry_and_keeps_the_built_in_losses(brightness):
  nst_jax.unregister_loss('brightness')
  assert 'brightness' not in nst_jax.default_config().losses
  assert 'brightness' not in terms.registered_losses()
  with pytest.raises(ValueError, match="'gram' is a built-in loss"):
    nst_jax.unregister_loss('gram')
  assert 'gram' in terms.registered_losses()
  nst_jax.register_loss('brightness', _brightness_term)  # For the fixture's clean-up.


def test_build_loss_refuses_an_unknown_option_and_an_unknown_loss(brightness):
  with pytest.raises(ConfigError, match=r"config\.losses\.brightness has no option 'colour'"):
    terms.build_loss('brightness', {'weight': 1.0, 'colour': 'red'})
  with pytest.raises(ConfigError, match=r"config\.losses\.gram has no option 'kind'"):
    terms.build_loss('gram', {'weight': 1.0, 'layers': {'relu1_1': 1.0}, 'kind': 'gram'})
  with pytest.raises(ConfigError, match="no loss is registered as 'shiny'"):
    terms.build_loss('shiny', {'weight': 1.0})
  term = terms.build_loss('brightness', {'weight': 3.0, 'target': 0.2, 'power': 4})
  assert term.weight == 3.0


def test_register_loss_refuses_a_name_that_is_not_an_identifier():
  with pytest.raises(ValueError, match='must be a Python identifier'):
    nst_jax.register_loss('my-loss', _brightness_term)


def test_video_ties_frames_over_several_passes():
  config = load('video').get_config()
  assert config.losses.temporal.weight > 0 and config.video.mode == 'sweeps'
  assert config.video.passes >= 2 and config.image_size <= 512
  assert set(nst_jax.terms_from_config(config)) == {'content', 'gram', 'temporal'}
