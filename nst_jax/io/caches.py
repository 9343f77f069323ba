"""Per-user cache folders: the converted VGG19 weights and JAX's persistent compilation cache.

Both live under `cache_root()`: `$NST_JAX_CACHE`, else `$XDG_CACHE_HOME/nst_jax`, else
`~/.cache/nst_jax`. The weights are `vgg19_<source>.npz` there (`nst_jax.io.weights`), the
compiled programs the folder `jax/` (`compilation_cache_dir()`).

`enable_compilation_cache()` makes JAX keep every compiled program on disk, so that a second run
of the same command (same sizes, config and devices) loads its programs instead of compiling
them: the scripts call it (flag `--compile_cache`), library users opt in with one call. Runs
that share the folder at the same time are safe: JAX reads and writes its entries under a file
lock (which needs the `filelock` package) whenever the cache has a size limit, and this sets
one, so the least recently used entries go first. A cache entry is trusted code: keep the folder
private to its user (it is created with mode 0700).
"""

import errno
import logging
import os
import pathlib

import jax

# Compile times above this are worth a cache entry. JAX's default (1 s) keeps only the main
# loop: the dozens of small programs that prepare a batch (resizing, targets, start state) take
# 0.02-0.3 s each to compile and add up to seconds, and a cache hit costs milliseconds.
MIN_COMPILE_SECONDS = 0.0
# The cache's size limit; past it, the least recently used entries are deleted.
MAX_CACHE_BYTES = 2 * 1024**3

_ENVIRONMENT = {  # The settings here, and the variables by which a user's own choice wins.
  'jax_compilation_cache_dir': 'JAX_COMPILATION_CACHE_DIR',
  'jax_persistent_cache_min_compile_time_secs': 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS',
  'jax_compilation_cache_max_size': 'JAX_COMPILATION_CACHE_MAX_SIZE',
}


def cache_root() -> pathlib.Path:
  """`$NST_JAX_CACHE`, else `$XDG_CACHE_HOME/nst_jax`, else `~/.cache/nst_jax`."""
  if os.environ.get('NST_JAX_CACHE'):
    return pathlib.Path(os.environ['NST_JAX_CACHE'])
  xdg = os.environ.get('XDG_CACHE_HOME')
  return (pathlib.Path(xdg) if xdg else pathlib.Path.home() / '.cache') / 'nst_jax'


def compilation_cache_dir() -> pathlib.Path:
  """The default folder of JAX's persistent compilation cache: `cache_root() / 'jax'`."""
  return cache_root() / 'jax'


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> pathlib.Path:
  """Turns on JAX's persistent compilation cache for this process; returns its folder.

  Args:
    directory: where the compiled programs go; None: `$JAX_COMPILATION_CACHE_DIR` if set, else
      `compilation_cache_dir()`.

  Sets the minimum compile time of an entry to `MIN_COMPILE_SECONDS` and the size limit to
  `MAX_CACHE_BYTES`, unless the environment sets them (`JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`,
  `JAX_COMPILATION_CACHE_MAX_SIZE`). May be called after programs were compiled: only later
  compilations use the cache.

  Raises:
    OSError: the folder cannot be created or written to.
  """
  if directory is None:
    directory = os.environ.get(_ENVIRONMENT['jax_compilation_cache_dir']) or (
      compilation_cache_dir()
    )
  path = pathlib.Path(directory).expanduser().absolute()
  path.mkdir(mode=0o700, parents=True, exist_ok=True)
  if not os.access(path, os.W_OK | os.X_OK):
    raise PermissionError(errno.EACCES, 'not writable', os.fspath(path))
  defaults = {
    'jax_persistent_cache_min_compile_time_secs': MIN_COMPILE_SECONDS,
    'jax_compilation_cache_max_size': MAX_CACHE_BYTES,
  }
  for name, value in defaults.items():
    if not os.environ.get(_ENVIRONMENT[name]):
      jax.config.update(name, value)
  # JAX opens its cache once per process; a folder set (or a cache disabled) before would stay.
  previous = jax.config.jax_compilation_cache_dir
  stale = previous not in (None, os.fspath(path)) or not jax.config.jax_enable_compilation_cache
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', os.fspath(path))
  if stale:
    _reset()
  return path


def disable_compilation_cache() -> None:
  """Turns JAX's persistent compilation cache off for this process (whatever set it)."""
  jax.config.update('jax_enable_compilation_cache', False)
  if jax.config.jax_compilation_cache_dir:
    _reset()


def _reset() -> None:
  """Makes JAX open its cache afresh at the next compilation (it opens it once per process)."""
  from jax.experimental.compilation_cache import compilation_cache

  jax_logger = logging.getLogger('jax._src.compilation_cache')
  level = jax_logger.level
  jax_logger.setLevel(logging.WARNING)  # Not its 'Resetting cache' line in every script's log.
  try:
    compilation_cache.reset_cache()
  finally:
    jax_logger.setLevel(level)
