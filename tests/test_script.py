"""Tests for nst_jax.script: exit codes, one-line errors, config files and flags."""

import ml_collections
import pytest

import nst_jax
from nst_jax.app import script
from nst_jax.errors import ConfigError, ImageError, NonFiniteLossError
from nst_jax.run import config as config_lib


@pytest.mark.parametrize(
  'exc, code, prefix',
  [
    (ConfigError('bad\nthing'), 2, 'error: bad thing'),
    (ImageError("content image 'x.jpg': file not found"), 2, "error: content image 'x.jpg'"),
    (NonFiniteLossError('loss went NaN'), 1, 'error: loss went NaN'),
    (script.Interrupted('saved x'), 130, 'interrupted: saved x'),
    (KeyboardInterrupt(), 130, 'interrupted: '),
  ],
)
def test_exit_codes_and_one_line_messages(exc, code, prefix, capsys):
  def main(argv):
    raise exc

  with pytest.raises(SystemExit) as info:
    script.call_main(main, ['prog'])
  assert info.value.code == code
  err = capsys.readouterr().err
  assert err.startswith(prefix) and err.count('\n') == 1, err


def test_other_exceptions_are_bugs_and_propagate():
  def main(argv):
    raise RuntimeError('a bug')

  with pytest.raises(RuntimeError):
    script.call_main(main, ['prog'])


def test_unknown_field_message_names_the_override_and_suggests():
  exc = AttributeError('\'image_siz\'\nDid you mean "image_size" instead of "image_siz"?')
  argv = ['prog', '--config=c.py', '--config.image_siz=3']
  assert script.unknown_field_message(exc, argv) == (
    "--config.image_siz: the config has no field 'image_siz' (did you mean 'image_size'?)"
  )
  nested = AttributeError('"\'zz\'"')
  message = script.unknown_field_message(nested, ['prog', '--config.schedule.zz=1'])
  assert message == "--config.schedule.zz: the config has no field 'zz'"


def test_a_flat_name_of_the_old_config_names_its_new_place():
  exc = AttributeError("'num_steps'")
  message = script.unknown_field_message(exc, ['prog', '--config.num_steps=3'])
  assert message == (
    '--config.num_steps: config.num_steps was renamed: use config.schedule.num_steps '
    '(see docs/config.md)'
  )
  text = (
    "flag --config.init=noise: Failed to parse 'noise' as a ConfigDict: ValueError('malformed')"
  )
  assert script.flag_error_message(text).startswith(
    '--config.init is a group of fields (kind, noise); set one, e.g. --config.init.kind='
  )


def test_config_file_errors_are_one_line():
  text = (
    'flag --config=c.py:x: Error whilst parsing config file:\n\nTraceback (most recent call '
    'last):\n  File "c.py", line 3\nTypeError: get_config() takes 0 positional arguments\n'
  )
  message = script.flag_error_message(text)
  assert '\n' not in message and message.endswith(
    'TypeError: get_config() takes 0 positional arguments'
  )
  assert (
    script.flag_error_message(
      'flag --output=None: Flag --output must have a value other than None.'
    )
    == '--output is required'
  )


def test_check_fields():
  config = nst_jax.default_config()
  config_lib.check_fields(config)
  extra = nst_jax.default_config()
  extra.num_step = 3
  with pytest.raises(ConfigError, match="config has no field 'num_step'"):
    config_lib.check_fields(extra, 'c.py')
  old = nst_jax.default_config()
  old.tolerance = 0.1
  with pytest.raises(ConfigError, match='renamed: use config.schedule.plateau_tolerance'):
    config_lib.check_fields(old, 'c.py')
  nested = nst_jax.default_config()
  nested.schedule.steps = 3
  with pytest.raises(ConfigError, match="config.schedule has no field 'steps'"):
    config_lib.check_fields(nested, 'c.py')
  partial = ml_collections.ConfigDict({'image_size': 64})
  with pytest.raises(ConfigError, match='config lacks .*schedule.*default_config'):
    config_lib.check_fields(partial, 'c.py')


def test_positional_arguments_are_refused():
  script.check_no_arguments(['prog'])
  with pytest.raises(ConfigError, match="unexpected argument.*'out.png'"):
    script.check_no_arguments(['prog', 'out.png'])
