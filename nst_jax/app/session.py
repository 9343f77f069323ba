"""What every command shares: planning, batches, running, saving, rescuing, and the run record.

A command (`Command`) says only what is its own: how it plans its outputs and splits its pairs
into batches (`plan`), each batch's inputs (`inputs`), what it writes when a batch is done
(`save`) and what it writes when a batch is interrupted or its loss goes non-finite (`rescue`).
`run_command` does the rest for every command alike: it loads the network once, runs the batches
with a progress display, writes the workdir's record, and turns Ctrl-C and non-finite losses into
saved images and a one-line message (`Session`). With a workdir (`nst_jax.app.workdir`), each
batch also writes TensorBoard summaries and checkpoints there, and resumes from its checkpoint
when the command runs again: a command that works batch by batch resumes with no code of its own.
"""

import abc
import contextlib
import pathlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from nst_jax.app import records, reporting, summaries
from nst_jax.app.script import Interrupted
from nst_jax.app.workdir import Workdir, as_workdir
from nst_jax.core.terms import LossTerm
from nst_jax.errors import NonFiniteLossError, StylizeInterrupted
from nst_jax.io import checkpoints, weights
from nst_jax.run import engine, inputs, resume, schedule
from nst_jax.run.history import History, Progress
from nst_jax.run.pairs import Distributed, process_share

Batch = tuple[tuple[int, int], list[int]]  # (image size, indices of its pairs)


class BatchInputs(NamedTuple):
  """What one `stylize` call of a batch receives (this process's pairs only).

  Attributes:
    contents: (B, H, W, 3) in [0, 1].
    style_weights: (B, S) or (S,) blend weights, or None (see `stylize`).
    init_images: (B, H, W, 3) start images, or None.
    guides: (B, H, W, G) the pairs' guides, or None.
    style_guides: one (Hs, Ws, G) guide image per style, or None.
    pair_weights: `{term: (B,)}` each pair's weight of some terms (see `stylize`), or None.
    terms: the objective `{name: LossTerm}`, or None: the config's.
    config: this batch's own config, or None: the command's.
  """

  contents: np.ndarray
  style_weights: np.ndarray | None = None
  init_images: np.ndarray | None = None
  guides: np.ndarray | None = None
  style_guides: Sequence[np.ndarray] | None = None
  pair_weights: dict[str, np.ndarray] | None = None
  terms: dict[str, LossTerm] | None = None
  config: ml_collections.ConfigDict | None = None


class Command(abc.ABC):
  """One script's work, in the steps `run_command` drives.

  `plan()` runs first and must set `batches`, `names` (one per pair, for the run record),
  `styles` (the style images) and `info` (what `run.json` records), checking every input and
  output before anything is loaded. `session` is set while the batches run.
  """

  batches: list[Batch]
  names: list[str]
  styles: list[np.ndarray]
  info: dict[str, Any]
  session: 'Session'

  @abc.abstractmethod
  def plan(self) -> None:
    """Checks the inputs and outputs, and splits the pairs into batches."""

  @abc.abstractmethod
  def inputs(self, pairs: list[int]) -> BatchInputs:
    """The inputs of this process's `pairs` of the current batch."""

  @abc.abstractmethod
  def save(self, pairs: list[int], results: np.ndarray) -> None:
    """Writes what a finished batch made: `results` (P, H, W, 3), one per pair of `pairs`."""

  @abc.abstractmethod
  def rescue(self, tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    """Writes the images of an interrupted ('interrupted') or failed ('last_finite') batch,
    `{pair: image}`, and returns the files written."""

  def resume_hint(self, pairs: list[int], saved: list[pathlib.Path]) -> str:
    """Appended to the Ctrl-C message: how to continue."""
    return ''

  def on_progress(self, progress: Progress) -> None:  # noqa: B027 (optional)
    """Called after every chunk, after the progress display."""

  def finish(self) -> Any:  # noqa: B027 (optional)
    """Runs after the last batch; its value is `run_command`'s."""


def run_command(
  command: Command,
  config: ml_collections.ConfigDict,
  dist: Distributed,
  workdir: str | Workdir | None,
  reporter: reporting.ProgressReporter | None = None,
) -> Any:
  """Plans `command`, runs its batches one after another and writes the run record.

  `workdir` (a folder, or a `Workdir` with its settings) receives the record, summaries and
  checkpoints; each batch resumes from its checkpoint there, unless `Workdir.restart`.
  """
  command.plan()
  session = Session(config, dist, command.batches, command.names, workdir, command.info, reporter)
  command.session = session
  hint = session.resume_hint if session.checkpointing else command.resume_hint
  with session.rescue(command.rescue, hint):
    for b, (_, pairs) in enumerate(command.batches):
      results = session.run(b, command.inputs, command.styles, command.on_progress)
      command.save(pairs, results)
  session.finish('done')
  return command.finish()


class Session:
  """What the batches of one command share: config, network, progress display and run record."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    dist: Distributed,
    batches: Sequence[Batch],
    names: Sequence[str],
    workdir: str | Workdir | None,
    info: dict[str, Any],
    reporter: reporting.ProgressReporter | None,
  ):
    self.options = as_workdir(workdir)
    self.config, self.dist = config, dist
    self.workdir = self.options.path if self.options else None
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
    self.started: float | None = None  # When it started (time.monotonic).
    self.checkpointing = bool(self.options and self.options.checkpoints)
    if self.options and self.options.restart and dist.is_writer:
      checkpoints.delete_checkpoints(self.options.checkpoint_root)
      logging.info('--restart: deleted the checkpoints in %s', self.options.checkpoint_root)
    if self.options and self.options.restart and dist.process_count > 1:
      # Nobody may resume from what process 0 is deleting.
      multihost_utils.sync_global_devices('nst_jax restart')
    self.summaries = None  # Only process 0 writes them.
    if self.options and dist.is_writer:
      writer = summaries.open_writer(self.workdir)
      self.summaries = summaries.RunSummaries(writer, config, self.options.image_every)
    self._networks: dict[tuple[str, str, str], Any] = {}
    self.network = self.network_for(config)

  def network_for(self, config: ml_collections.ConfigDict) -> Any:
    """`(VGG19, params)` of `config.network`, loaded once per setting."""
    key = (config.network.weights, config.network.pooling, config.network.dtype)
    if key not in self._networks:
      logging.info('Loading VGG19 weights (%s)', config.network.weights)
      self._networks[key] = weights.load_vgg19(key[0], pooling=key[1], dtype=jnp.dtype(key[2]))
    return self._networks[key]

  def local(self, b: int) -> list[int]:
    """This process's pairs of batch `b` (indices into the command's pairs)."""
    pairs = self.batches[b][1]
    return process_share(len(pairs), self.dist).take(pairs)

  def run(
    self,
    b: int,
    make_inputs: Callable[[list[int]], BatchInputs],
    styles: Sequence[np.ndarray],
    on_progress: Callable[[Progress], None] | None = None,
  ) -> np.ndarray:
    """Stylizes batch `b`; returns the results of all its pairs, on every process."""
    self.current = b
    given = make_inputs(self.local(b))
    config = self.config if given.config is None else given.config
    saver = None
    if self.checkpointing:
      saver = resume.OrbaxCheckpoints(
        self.options.batch_checkpoints(b),
        every=self.options.checkpoint_every,
        names=self.records[b].pairs,
        hint='run with --restart to start over, or give another --workdir',
      )
    if self.summaries is not None:
      blend = inputs.blend_weights(given.style_weights, len(given.contents), len(styles))
      dominant = [styles[int(np.argmax(w))] for w in blend] if len(styles) else given.contents
      self.summaries.start_batch(config, self.records[b].pairs, given.contents, dominant)
    first = [True]

    def callback(progress: Progress) -> None:
      resumed = first[0] and saver is not None and saver.restored is not None
      if resumed and self.summaries is not None:
        self.summaries.resumed(saver.restored.step)
      first[0] = False
      self.reporter(progress)
      if self.summaries is not None:
        self.summaries.chunk(progress)
      if on_progress is not None:
        on_progress(progress)

    self.reporter.start_batch(b)
    self.started = start = time.monotonic()
    try:
      result = engine.stylize(
        given.contents,
        styles,
        config,
        style_weights=given.style_weights,
        init_images=given.init_images,
        guides=given.guides,
        style_guides=given.style_guides,
        terms=given.terms,
        pair_weights=given.pair_weights,
        network=self.network_for(config),
        callback=callback,
        checkpoints=saver,
      )
    finally:
      self.reporter.close()
      if saver is not None:
        saver.close()
    # Drop the duplicate a process without pairs of its own passed (see `process_share`).
    real = len(self.batches[b][1])
    self.records[b].history = result.history.first_pairs(real)
    self.records[b].seconds = time.monotonic() - start
    if self.config.schedule.plateau_tolerance:
      steps = self.records[b].history.pair_steps
      for name, taken in zip(self.records[b].pairs, steps.T, strict=True):
        logging.info(
          '%s: %s steps (config.schedule.plateau_tolerance stops a pair on its plateau)',
          name,
          '+'.join(map(str, taken)),
        )
    return np.asarray(result.images)[:real]

  def resume_hint(self, pairs: list[int], saved: list[pathlib.Path]) -> str:
    """The Ctrl-C message's end where batches checkpoint into the workdir."""
    return (
      f'; checkpointed into {self.workdir}: run the same command again to resume exactly '
      '(--restart starts over)'
    )

  def finish(self, status: str) -> None:
    """Writes the run record into the workdir (process 0), whatever the outcome."""
    if self.summaries is not None:
      self.summaries.close()
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
      self._record_partial(e.history)
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
      self._record_partial(e.history)
      self.finish('non-finite loss')
      if e.images is None:
        raise
      pairs = self.batches[self.current][1]
      saved = save('last_finite', dict(zip(pairs, np.asarray(e.images), strict=False)))
      raise NonFiniteLossError(
        f'{e}; saved to {", ".join(map(str, saved))}',
        images=e.images,
        terms=e.terms,
        history=e.history,
      ) from None

  def _record_partial(self, history: History | None) -> None:
    """The stopped batch's record: its history up to the last step run, and its seconds."""
    if self.started is None:  # Stopped before the batch started.
      return
    record = self.records[self.current]
    if history is not None:
      record.history = history.first_pairs(len(self.batches[self.current][1]))
    record.seconds = time.monotonic() - self.started
