"""Gives the memory XLA's compiler freed back to the system, after each large compilation.

Compiling a step program allocates and frees a few hundred MB of host memory. glibc's allocator
keeps most of what was freed in the process's heap, so on a CPU the steps' buffers come on top of
it: a 256 px Adam run peaked at 0.82 GB (0.69 GB with those pages returned), and at 1.01 GB with
two regions' larger programs (0.75 GB; docs/masks.md, "Cost"). `trim_after_compiles()` asks
glibc (`malloc_trim`) to return the heap's free pages after every compilation that took at least
`MIN_COMPILE_SECONDS`, through JAX's monitoring hook, before the compiled program first runs.
`engine.prepare` turns it on; it costs 5-35 ms per such compilation, and nothing where the C
library has no `malloc_trim` (macOS, musl). Device memory on an accelerator is not affected.
"""

import ctypes
import functools
from typing import Any

import jax

# JAX's event after each XLA compilation (jax._src.dispatch.BACKEND_COMPILE_EVENT).
COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'
# The step and evaluation programs take seconds to compile; the many small programs that prepare
# a batch take 0.02-0.3 s and leave little behind, so trimming after each would only cost time.
MIN_COMPILE_SECONDS = 0.5


@functools.cache
def _malloc_trim() -> Any:
  """glibc's `int malloc_trim(size_t pad)`, or None where the C library lacks it."""
  try:
    libc = ctypes.CDLL(None)
  except (OSError, TypeError):  # TypeError: Windows, which has no process-wide handle.
    return None
  trim = getattr(libc, 'malloc_trim', None)
  if trim is not None:
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
  return trim


def trim() -> bool:
  """Returns the C heap's free pages to the system; True if any were returned."""
  malloc_trim = _malloc_trim()
  return bool(malloc_trim(0)) if malloc_trim is not None else False


def after_compile(event: str, duration: float, **unused_metadata: Any) -> None:
  """JAX's monitoring listener: `trim()` after a compilation of at least `MIN_COMPILE_SECONDS`."""
  if event == COMPILE_EVENT and duration >= MIN_COMPILE_SECONDS:
    trim()


@functools.cache
def trim_after_compiles() -> None:
  """Registers `after_compile` with JAX, once per process (further calls do nothing)."""
  jax.monitoring.register_event_duration_secs_listener(after_compile)
