"""One command's run over its batches: the network, progress display, run record and rescue."""

import contextlib
import pathlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import records, reporting
from nst_jax.app.script import Interrupted
from nst_jax.errors import NonFiniteLossError, StylizeInterrupted
from nst_jax.io import weights
from nst_jax.run import engine, schedule
from nst_jax.run.history import Progress
from nst_jax.run.pairs import Distributed, process_share

Batch = tuple[tuple[int, int], list[int]]  # (image size, indices of its pairs)


class Session:
  """What the batches of one command share: config, network, progress display and run record."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    dist: Distributed,
    batches: Sequence[Batch],
    names: Sequence[str],
    workdir: str | None,
    info: dict[str, Any],
    reporter: reporting.ProgressReporter | None,
  ):
    self.config, self.dist, self.workdir = config, dist, workdir
    self.batches = list(batches)
    self.records = [records.BatchRecord([names[i] for i in pairs], size) for size, pairs in batches]
    self.info = {
      'command': sys.argv,
      **info,
      'devices': jax.device_count(),
      'processes': dist.process_count,
      'jax': jax.__version__,
    }
    self.reporter = reporter or reporting.ProgressReporter(config, len(self.batches))
    self.current = 0  # The batch running (or that failed).
    logging.info('Loading VGG19 weights (%s)', config.weights)
    self.network = weights.load_vgg19(
      config.weights, pooling=config.pooling, dtype=jnp.dtype(config.dtype)
    )

  def local(self, b: int) -> list[int]:
    """This process's pairs of batch `b` (indices into the command's pairs)."""
    pairs = self.batches[b][1]
    return process_share(len(pairs), self.dist).take(pairs)

  def run(
    self,
    b: int,
    make_inputs: Callable[[list[int]], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]],
    styles: Sequence[np.ndarray],
    on_progress: Callable[[Progress], None] | None = None,
  ) -> np.ndarray:
    """Stylizes batch `b`; returns the results of all its pairs, on every process."""
    self.current = b
    contents, style_weights, init_images = make_inputs(self.local(b))

    def callback(progress: Progress) -> None:
      self.reporter(progress)
      if on_progress is not None:
        on_progress(progress)

    self.reporter.start_batch(b)
    start = time.monotonic()
    try:
      result = engine.stylize(
        contents,
        styles,
        self.config,
        style_weights=style_weights,
        init_images=init_images,
        network=self.network,
        callback=callback,
      )
    finally:
      self.reporter.close()
    # Drop the duplicate a process without pairs of its own passed (see `process_share`).
    real = len(self.batches[b][1])
    self.records[b].history = result.history.first_pairs(real)
    self.records[b].seconds = time.monotonic() - start
    if self.config.tolerance:
      steps = self.records[b].history.pair_steps
      for name, taken in zip(self.records[b].pairs, steps.T, strict=True):
        logging.info(
          '%s: %s steps (config.tolerance stops a pair on its plateau)',
          name,
          '+'.join(map(str, taken)),
        )
    return np.asarray(result.images)[:real]

  def finish(self, status: str) -> None:
    """Writes the run record into the workdir (process 0), whatever the outcome."""
    if self.workdir and self.dist.is_writer:
      records.write_workdir(
        self.workdir, self.config, self.records, {**self.info, 'status': status}
      )
      logging.info('Wrote the run record (%s) to %s', status, self.workdir)

  @contextlib.contextmanager
  def rescue(
    self,
    save: Callable[[str, dict[int, np.ndarray]], list[pathlib.Path]],
    resume_hint: Callable[[list[int], list[pathlib.Path]], str] = lambda pairs, saved: '',
  ) -> Iterator[None]:
    """Saves what there is when a batch is interrupted or its loss goes non-finite, then raises.

    `save(tag, {pair: image})` writes the images ('interrupted' or 'last_finite') and returns the
    files; `resume_hint(pairs, saved)` adds to the Ctrl-C message. The run record says how the
    run ended.
    """
    try:
      yield
    except StylizeInterrupted as e:
      self.finish('interrupted')
      # The engine hands each process only its own pairs' images (no collective on Ctrl-C).
      pairs = self.batches[self.current][1]
      share = process_share(len(pairs), self.dist)
      mine = [] if share.duplicate else share.take(pairs)
      saved = save('interrupted', dict(zip(mine, np.asarray(e.images), strict=False)))
      steps = schedule.steps_per_scale(self.config)
      where = f'at step {e.step} of {steps[e.scale]}'
      where += f' at scale {e.scale + 1} of {len(steps)}' if len(steps) > 1 else ''
      raise Interrupted(
        f'stopped {where}; saved the current image(s) to {", ".join(map(str, saved))}'
        + resume_hint(mine, saved)
      ) from None
    except NonFiniteLossError as e:
      self.finish('non-finite loss')
      if e.images is None:
        raise
      pairs = self.batches[self.current][1]
      saved = save('last_finite', dict(zip(pairs, np.asarray(e.images), strict=False)))
      raise NonFiniteLossError(
        f'{e}; saved to {", ".join(map(str, saved))}', images=e.images, terms=e.terms
      ) from None
