"""The compiler's freed heap goes back to the system: nst_jax.io.heap."""

import ctypes

import jax
import jax.numpy as jnp
import pytest

from nst_jax.io import heap
from nst_jax.run import memory

pytestmark = pytest.mark.skipif(
  heap._malloc_trim() is None, reason='the C library has no malloc_trim (not glibc)'
)


def test_trim_returns_freed_heap_pages():
  libc = ctypes.CDLL(None)
  libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
  libc.free.argtypes = [ctypes.c_void_p]
  block, count = 64 * 1024, 2000  # Below glibc's mmap threshold: from the heap, 125 MB in all.
  blocks = [libc.malloc(block) for _ in range(count)]
  for b in blocks:
    ctypes.memset(b, 1, block)
  for b in blocks[:-1]:  # The last block stays, so that free() cannot shrink the heap's top.
    libc.free(b)
  kept = memory.resident_bytes()
  assert heap.trim()
  assert kept - memory.resident_bytes() > 0.5 * block * count
  libc.free(blocks[-1])


def test_trims_after_long_compiles_only(monkeypatch):
  calls = []
  monkeypatch.setattr(heap, 'trim', lambda: calls.append(1))
  heap.after_compile(heap.COMPILE_EVENT, heap.MIN_COMPILE_SECONDS / 2, fun_name='small')
  heap.after_compile('/jax/other_event', 10.0)
  assert not calls
  heap.after_compile(heap.COMPILE_EVENT, heap.MIN_COMPILE_SECONDS, fun_name='step')
  assert len(calls) == 1


def test_registered_once_and_called_by_jax(monkeypatch):
  heap.trim_after_compiles()
  heap.trim_after_compiles()
  x = jnp.arange(7.0)
  seen = []
  monkeypatch.setattr(heap, 'MIN_COMPILE_SECONDS', 0.0)
  monkeypatch.setattr(heap, 'trim', lambda: seen.append(1))
  jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.25)(x).block_until_ready()
  assert len(seen) == 1  # One compilation, one listener.
