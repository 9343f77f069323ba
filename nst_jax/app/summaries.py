"""TensorBoard summaries of a run, written into its workdir beside the JSON-lines history.

The writer is behind a small interface (`SummaryWriter`): `TensorBoardWriter` writes event files
with tensorboardX, which needs neither TensorFlow nor PyTorch (clu's `metric_writers`, the flax
convention, imports TensorFlow for its TensorBoard writer); `NullWriter` writes nothing, for
processes other than 0 and runs without a workdir. `RunSummaries` decides what is written:

  * `<pair>/total` and `<pair>/<term>` (unweighted) at every chunk's end, per pair (`tag_name`);
  * `<pair>/step_size`: the line search's last step (L-BFGS) or the learning rate (Adam);
  * `steps_per_second` over each chunk (left out for the first of a scale or after a resume,
    which compile);
  * `images` every `image_every` steps: a grid, one row per pair: content, style, current image;
  * the config as hyperparameters (TensorBoard's HParams tab), with each pair's total as metric.

Steps count over all the batches of a command (batch b starts where batch b - 1 ended), so that
one TensorBoard run holds a whole command. When a batch starts (afresh or from a checkpoint),
whatever an earlier attempt wrote from that step on is discarded (TensorBoard's purge of a
restarted run), so a resumed run's summaries have no gaps and no duplicates.

    tensorboard --logdir runs/
"""

import json
import pathlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from absl import logging

from nst_jax.app import sheets
from nst_jax.run import schedule
from nst_jax.run.history import Progress
from nst_jax.run.resume import flat_config

IMAGE_CELL = 128  # Pixels per side of each image in the `images` grid.
MAX_IMAGE_ROWS = 16  # Pairs shown in the `images` grid.


class SummaryWriter(Protocol):
  """Where summaries go: scalars and images at a step, hyperparameters once."""

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    """Writes each `{tag: value}` at `step`."""

  def image(self, step: int, tag: str, image: np.ndarray) -> None:
    """Writes `image` (H, W, 3) in [0, 1] at `step`."""

  def hparams(self, values: Mapping[str, Any], metrics: Sequence[str]) -> None:
    """Writes the hyperparameters (numbers, strings, bools) and the scalar tags that measure
    them."""

  def start_at(self, step: int) -> None:
    """Discards what an earlier attempt of the run wrote at `step` or later."""

  def flush(self) -> None:
    """Writes out what is buffered."""

  def close(self) -> None:
    """Flushes and closes."""


class NullWriter:
  """A `SummaryWriter` that writes nothing."""

  def scalars(self, step, values):
    pass

  def image(self, step, tag, image):
    pass

  def hparams(self, values, metrics):
    pass

  def start_at(self, step):
    pass

  def flush(self):
    pass

  def close(self):
    pass


class TensorBoardWriter:
  """A `SummaryWriter` of TensorBoard event files in `directory`, with tensorboardX."""

  def __init__(self, directory: str | pathlib.Path):
    from tensorboardX import SummaryWriter as EventWriter  # Imported only for runs that write.
    from tensorboardX.proto import event_pb2
    from tensorboardX.summary import hparams, image

    self._events, self._make_image, self._make_hparams = event_pb2, image, hparams
    # The file is named by the second it opens in; a resumed run that opens within the same
    # second would truncate the first run's file, so the suffix (nanoseconds) keeps both, in order.
    suffix = f'.{time.time_ns()}'
    self._writer = EventWriter(str(directory), flush_secs=30, filename_suffix=suffix)

  def scalars(self, step, values):
    for tag, value in values.items():
      self._writer.add_scalar(tag, float(value), step)

  def image(self, step, tag, image):
    pixels = np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    summary = self._make_image(tag, pixels, dataformats='HWC')
    self._writer.file_writer.add_summary(summary, step)

  def hparams(self, values, metrics):
    experiment, start, end = self._make_hparams(dict(values), dict.fromkeys(metrics, 0.0))
    for summary in (experiment, start, end):
      self._writer.file_writer.add_summary(summary)

  def start_at(self, step):
    # TensorBoard drops every event at `step` or later that precedes a START session log.
    events = self._events
    log = events.SessionLog(status=events.SessionLog.START)
    self._writer.file_writer.add_event(events.Event(step=step, session_log=log))

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


def open_writer(directory: str | pathlib.Path | None, *, is_writer: bool = True) -> SummaryWriter:
  """A `TensorBoardWriter` into `directory`, or a `NullWriter` without one or off process 0."""
  if directory is None or not is_writer:
    return NullWriter()
  try:
    return TensorBoardWriter(directory)
  except ImportError:
    logging.warning('no TensorBoard summaries: they need tensorboardX (pip install .[research])')
    return NullWriter()


def tag_name(name: str) -> str:
  """`name` with the characters TensorBoard does not allow in tags (all but letters, digits and
  `_.-/`) as `_`: `gram.weight=1e-3` is tagged `gram.weight_1e-3`."""
  return re.sub(r'[^\w.\-/]', '_', name)


def hparam_values(config: Any) -> dict[str, Any]:
  """The config's fields as hyperparameters: numbers, strings and bools (others as JSON)."""
  out = {}
  for name, value in flat_config(config).items():
    ok = isinstance(value, bool | int | float | str)
    out[name] = value if ok else json.dumps(value, sort_keys=True)
  return out


class RunSummaries:
  """What a command's batches write into its `SummaryWriter` (see the module docstring).

  Call `start_batch` before each batch, then `chunk` after each of its chunks (the engine's
  progress callback), and `close` at the end.

  Args:
    writer: where to write.
    config: the command's config (its hyperparameters).
    image_every: the `images` grid at the first chunk's end at or after each multiple of this many
      steps; 0: never.
    clock: seconds, for `steps_per_second`.
  """

  def __init__(self, writer: SummaryWriter, config: Any, image_every: int = 100, clock=None):
    self.writer, self.config, self.image_every = writer, config, image_every
    self._clock = clock or time.monotonic
    self._offset = 0  # Steps of the batches before the current one.
    self._batch_steps = 0
    self._started = False  # Whether anything was written yet by this session.
    self._pending_start: int | None = None
    self._last: tuple[int, float, int] | None = None  # (scale, time, step) of the last chunk.
    self._last_image = 0

  def start_batch(
    self,
    config: Any,
    names: Sequence[str],
    contents: np.ndarray,
    styles: Sequence[np.ndarray],
  ) -> None:
    """The next batch: its config, its pairs' names, contents (P, H, W, 3) and each pair's style
    (H, W, 3). Call `resumed` too if it resumes from a checkpoint."""
    self._offset += self._batch_steps
    self._batch_steps = sum(schedule.steps_per_scale(config))
    self._scale_steps = schedule.steps_per_scale(config)
    self.names, self.contents, self.styles = list(names), contents, list(styles)
    self._last, self._last_image = None, 0
    self._pending_start = self._offset + 1

  def resumed(self, step: int) -> None:
    """The current batch resumed from its checkpoint at `step` (of the batch), before its first
    chunk's `chunk`."""
    self._pending_start = self._offset + step + 1
    if self.image_every:
      self._last_image = step

  def chunk(self, progress: Progress) -> None:
    """Writes the summaries of the chunk that `progress` reports."""
    step = sum(self._scale_steps[: progress.scale]) + progress.step
    at = self._offset + step
    if self._pending_start is not None:
      self.writer.start_at(self._pending_start)
      self._pending_start = None
      if not self._started:
        metrics = [f'{tag_name(name)}/total' for name in self.names]
        self.writer.hparams(hparam_values(self.config), metrics)
        self._started = True
    values = {}
    for i, name in enumerate(map(tag_name, self.names)):
      values[f'{name}/total'] = progress.total[i]
      values.update({f'{name}/{term}': v[i] for term, v in progress.terms.items()})
      if progress.step_size is not None:
        values[f'{name}/step_size'] = progress.step_size[i]
    now = self._clock()
    if self._last is not None and self._last[0] == progress.scale and step > self._last[2]:
      values['steps_per_second'] = (step - self._last[2]) / max(now - self._last[1], 1e-9)
    self._last = (progress.scale, now, step)
    self.writer.scalars(at, values)
    due = self.image_every and step // self.image_every > self._last_image // self.image_every
    ended = progress.step >= progress.num_steps and progress.scale == progress.num_scales - 1
    if due or (ended and self.image_every):
      self.writer.image(at, 'images', self.image_grid(list(progress.images)))
      self._last_image = step

  def image_grid(self, current: Sequence[np.ndarray]) -> np.ndarray:
    """One row per pair (at most `MAX_IMAGE_ROWS`, and those whose contents this process has):
    its content, its style, and its image in `current` (all pairs)."""
    rows = min(len(current), len(self.contents), MAX_IMAGE_ROWS)  # Process 0's pairs come first.
    cell = (IMAGE_CELL, IMAGE_CELL)
    gutter = 4
    sheet = np.ones((gutter + rows * (IMAGE_CELL + gutter), gutter + 3 * (IMAGE_CELL + gutter), 3))
    for i in range(rows):
      for j, image in enumerate((self.contents[i], self.styles[i], current[i])):
        top, left = gutter + i * (IMAGE_CELL + gutter), gutter + j * (IMAGE_CELL + gutter)
        sheet[top : top + IMAGE_CELL, left : left + IMAGE_CELL] = sheets.fit_and_pad(image, cell)
    return sheet.astype(np.float32)

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()
