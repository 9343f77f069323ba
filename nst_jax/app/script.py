"""Running a script: flags, config files and exit codes.

The scripts in `scripts/` are thin: they define flags, then call one library function inside
`run`, which turns every user mistake into one line on stderr and an exit code:

  * 0: done;
  * 1: the run failed: a loss became non-finite (the last finite images are saved);
  * 2: a bad flag, config or input (`error: <message>`, no traceback), checked before the weights
    are loaded or anything is compiled;
  * 130: interrupted with Ctrl-C (the current images are saved, with how to resume).

Every script run this way also has `--compile_cache` (see `setup_compile_cache`): JAX's persistent
compilation cache, on by default in the per-user cache folder, so that a second run of a command
loads its compiled programs instead of compiling them.
"""

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from nst_jax.errors import ConfigError, NonFiniteLossError, NSTError
from nst_jax.io import caches
from nst_jax.run import config as config_lib

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
  """Ctrl-C, after the current images were saved; the message says where and how to resume."""


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def _exit(prefix: str, message: str, code: int) -> None:
  sys.stdout.flush()
  print(f'{prefix}: {_one_line(message)}', file=sys.stderr, flush=True)
  sys.exit(code)


COMPILE_CACHE_FLAG = 'compile_cache'


def run(main: Callable[[list[str]], None]) -> None:
  """`absl.app.run(main)` with one-line errors (see the module docstring for the exit codes) and
  the `--compile_cache` flag, applied before `main` runs."""
  if COMPILE_CACHE_FLAG not in flags.FLAGS:
    flags.DEFINE_string(
      COMPILE_CACHE_FLAG,
      'auto',
      "JAX's persistent compilation cache: 'auto' ($JAX_COMPILATION_CACHE_DIR, else the per-user "
      "cache folder's jax/; off if $JAX_ENABLE_COMPILATION_CACHE=false), 'off', or a folder.",
    )

  def cached_main(argv: list[str]) -> None:
    setup_compile_cache(flags.FLAGS[COMPILE_CACHE_FLAG].value)
    main(argv)

  app.run(functools.partial(call_main, cached_main), flags_parser=parse_flags)


def setup_compile_cache(value: str) -> None:
  """Applies a `--compile_cache` value: 'auto', 'off' or a folder (`nst_jax.io.caches`).

  Raises:
    ConfigError: a folder given by name cannot be created or written to. ('auto' then runs
      without the cache, with a warning.)
  """
  off = os.environ.get('JAX_ENABLE_COMPILATION_CACHE', '').lower() in ('0', 'false')
  if value == 'off' or (value == 'auto' and off):  # 'auto' follows JAX's own variable.
    caches.disable_compilation_cache()
    return
  try:
    caches.enable_compilation_cache(None if value == 'auto' else value)
  except OSError as e:
    if value == 'auto':
      logging.warning('Running without a compilation cache: %s', e)
      caches.disable_compilation_cache()
      return
    raise ConfigError(
      f'--compile_cache={value}: cannot use the folder ({e.strerror or e}); pass another folder '
      'or --compile_cache=off'
    ) from None


def call_main(main: Callable[[list[str]], None], argv: list[str]) -> None:
  """Runs `main(argv)`, turning the project's errors into one line and an exit code."""
  try:
    main(argv)
  except NonFiniteLossError as e:
    _exit('error', str(e), EXIT_FAILED)
  except NSTError as e:
    _exit('error', str(e), EXIT_USAGE)
  except Interrupted as e:
    _exit('interrupted', str(e), EXIT_INTERRUPTED)
  except KeyboardInterrupt:
    _exit('interrupted', 'stopped; there was no image in progress to save', EXIT_INTERRUPTED)


def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags like absl does, but a bad flag or config override is one `error:` line, exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _exit('error', flag_error_message(str(e)), EXIT_USAGE)
  except (AttributeError, KeyError) as e:  # An unknown --config.field, with an explicit --config.
    _exit('error', unknown_field_message(e, argv), EXIT_USAGE)
  except Exception as e:  # Only a config file runs user code here: e.g. a SyntaxError in it.
    _exit('error', f'loading the config file: {type(e).__name__}: {e}', EXIT_USAGE)
  return []  # Not reached.


def flag_error_message(text: str) -> str:
  """absl's flag error (or ml_collections' config-file traceback) as one line."""
  required = re.search(r'Flag --(\w+) must have a value other than None', text)
  if required:
    return f'--{required.group(1)} is required'
  group = re.search(r'flag --(\w+)\.([\w.]+)=\S* ?: Failed to parse .* as a ConfigDict', text)
  if group:
    name = group.group(2)
    node = config_lib.default_config()
    for part in name.split('.'):
      node = node.get(part) if hasattr(node, 'get') else None
    if hasattr(node, 'keys'):
      fields = list(node.keys())
      return (
        f'--{group.group(1)}.{name} is a group of fields ({", ".join(fields)}); set one, e.g. '
        f'--{group.group(1)}.{name}.{fields[0]}=... (see docs/config.md)'
      )
  if 'Traceback (most recent call last)' in text:  # A config file failed to load.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f'{lines[0].rstrip(":")} {lines[-1]}'
  return text


def unknown_field_message(exc: BaseException, argv: Sequence[str], name: str = 'config') -> str:
  """'--config.num_step: the config has no field 'num_step' (did you mean 'num_steps'?)'."""
  text = str(exc.args[0]) if exc.args else str(exc)
  while text[:1] in '"\'' and text[:1] == text[-1:] and len(text) > 1:  # KeyError's repr quoting.
    text = text[1:-1]
  lines = [line.strip() for line in text.replace('\\n', '\n').splitlines() if line.strip()]
  field = lines[0].strip('\'"\\') if lines else '?'
  overrides = [a.split('=', 1)[0].lstrip('-') for a in argv if re.match(rf'-{{1,2}}{name}\.', a)]
  matching = [o for o in overrides if field in o.split('.')[1:]]
  where = f'--{matching[0]}' if matching else f'--{name}.{field}'
  renamed = config_lib.renamed_field(where.split('.', 1)[1]) if '.' in where else None
  if renamed:
    return f'{where}: {renamed}'
  hint = ''
  suggestion = re.search(r'Did you mean "([^"]+)"', text)
  if suggestion:
    hint = f' (did you mean {suggestion.group(1)!r}?)'
  return f'{where}: the config has no field {field!r}{hint}'


def check_no_arguments(argv: Sequence[str]) -> None:
  """Refuses positional arguments (absl passes them through): they are always a mistake here."""
  if len(argv) > 1:
    raise ConfigError(
      f'unexpected argument(s) {" ".join(argv[1:])!r}; flags are written --name=value'
    )


def config_flag(default: str | os.PathLike, name: str = 'config') -> flags.FlagHolder:
  """`DEFINE_config_file(name, default, lock_config=True)`; bad overrides are one line, exit 2.

  `--config.field=value` overrides any field; unknown fields and values of the wrong type are
  refused. ml_collections applies the overrides of the default config while the flag is
  defined, so their errors are caught here.
  """
  try:
    return config_flags.DEFINE_config_file(
      name, os.fspath(default), 'Config file (a Python file with get_config()).', lock_config=True
    )
  except (AttributeError, KeyError) as e:
    _exit('error', unknown_field_message(e, sys.argv, name), EXIT_USAGE)
  except flags.Error as e:
    _exit('error', flag_error_message(str(e)), EXIT_USAGE)
  except Exception as e:  # The default config file's own code failed.
    _exit('error', f'loading the config file: {type(e).__name__}: {e}', EXIT_USAGE)
  raise AssertionError('not reached')


def get_config(holder: flags.FlagHolder) -> ml_collections.ConfigDict:
  """The parsed config; raises `ConfigError` if the file failed to load or a value is invalid."""
  filename = config_flags.get_config_filename(flags.FLAGS[holder.name])
  config = holder.value
  try:
    config.keys()
  except OSError as e:  # ml_collections' placeholder for a config file that failed to load.
    if not os.path.isfile(filename.split(':', 1)[0]):
      raise ConfigError(f'config file {filename!r}: file not found') from None
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    raise ConfigError(f'config file {filename!r}: {lines[-1]}') from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f'config file {filename!r}: get_config() returned a {type(config).__name__}, not a ConfigDict'
    )
  config_lib.check_fields(config, filename)
  config_lib.validate(config)
  return config
