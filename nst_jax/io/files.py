"""Writing files safely: atomic replacement, and an early check that a folder can be written."""

import contextlib
import functools
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import BinaryIO


@functools.cache
def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
  """Writes `path` with `write(file)`, atomically: readers never see a partial file.

  The bytes go to a temporary file in the destination folder, are flushed to disk, and the file
  then replaces `path` in one step, with the usual permissions (0o666 less the umask). On any
  failure, Ctrl-C included, the temporary file is removed and an old `path` is left intact. The
  folder must exist.

  Raises:
    OSError: the folder cannot be written; and whatever `write` raises.
  """
  target = pathlib.Path(path)
  fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f'.{target.name}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as file:
      write(file)
      file.flush()
      os.fsync(file.fileno())
    os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes the file private.
    os.replace(temp, target)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(temp)
    raise


def folder_problem(folder: str | os.PathLike, name: str = 'the folder') -> str | None:
  """Why `folder` could not be created or written, or None if it can. Creates nothing.

  Returns a phrase naming the path in the way, e.g. "cannot create the folder, 'a/b' is a file"
  (with `name` for "the folder") or "folder 'a' is not writable".
  """
  path = pathlib.Path(folder).absolute()
  existing = path
  while not existing.exists() and existing != existing.parent:
    if os.path.lexists(existing):  # A dangling symbolic link.
      return f'cannot create {name}, {str(existing)!r} is a broken link'
    existing = existing.parent
  if not existing.is_dir():
    return f'cannot create {name}, {str(existing)!r} is a file'
  if not os.access(existing, os.W_OK | os.X_OK):
    return f'folder {str(existing)!r} is not writable'
  return None
