"""Progress of a stylization run on a terminal (a bar) or in logs (absl lines)."""

import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import ml_collections
import numpy as np
from absl import logging

from nst_jax.run import schedule
from nst_jax.run.history import Progress


def _duration(seconds: float | None) -> str:
  if seconds is None or not math.isfinite(seconds):
    return '--:--'
  seconds = round(seconds)
  hours, rest = divmod(seconds, 3600)
  return f'{hours}:{rest // 60:02d}:{rest % 60:02d}' if hours else f'{rest // 60}:{rest % 60:02d}'


class ProgressReporter:
  """Shows step, losses and ETA after each chunk: a bar on a terminal, else absl log lines.

  Call `start_batch` before each `stylize` call and pass the reporter as its callback; the losses
  shown are means over the batch's pairs. `labels` names the batches ('pass 2/4'); default
  'batch 2/5' where there are several.
  """

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    num_batches: int = 1,
    *,
    stream: TextIO | None = None,
    bar: bool | None = None,
    clock: Callable[[], float] = time.monotonic,
    labels: Sequence[str] | None = None,
  ):
    self._stream = sys.stderr if stream is None else stream
    self._bar = self._stream.isatty() if bar is None else bar
    self._clock = clock
    self._scale_steps = schedule.steps_per_scale(config)
    self._batch_steps = sum(self._scale_steps)
    self._num_batches = num_batches
    self._labels = list(labels) if labels is not None else None
    self._total = self._batch_steps * num_batches
    self._start = clock()
    self._batch = -1
    self._last: tuple[Any, float, int] | None = None
    self._steady = [0.0, 0]  # Seconds and steps between reports of the same compiled program.
    self._open_line = False
    self.done = 0

  def start_batch(self, index: int) -> None:
    self._batch = index

  def batch_step(self, progress: Progress) -> int:
    """Steps done in the current batch, over all scales."""
    return sum(self._scale_steps[: progress.scale]) + progress.step

  def eta(self) -> float | None:
    seconds, steps = self._steady
    return None if steps == 0 else seconds / steps * (self._total - self.done)

  def __call__(self, progress: Progress) -> None:
    now = self._clock()
    self.done = max(0, self._batch) * self._batch_steps + self.batch_step(progress)
    segment = (self._batch, progress.scale)
    if self._last is not None and self._last[0] == segment:
      self._steady[0] += now - self._last[1]
      self._steady[1] += self.done - self._last[2]
    self._last = (segment, now, self.done)
    losses = [('loss', float(np.mean(progress.total)))]
    losses += [(name, float(np.mean(v))) for name, v in progress.terms.items()]
    where = []
    if progress.num_scales > 1:
      where.append(f'scale {progress.scale + 1}/{progress.num_scales}')
    if self._labels is not None:
      where.append(self._labels[max(0, self._batch)])
    elif self._num_batches > 1:
      where.append(f'batch {self._batch + 1}/{self._num_batches}')
    elapsed = now - self._start
    if self._bar:
      self._draw_bar(losses, where, elapsed)
    else:
      logging.info(
        'step %d/%d%s: %s | %s elapsed, ETA %s',
        self.done,
        self._total,
        f' ({", ".join(where)})' if where else '',
        ', '.join(f'{name} {value:.4g}' for name, value in losses),
        _duration(elapsed),
        _duration(self.eta()),
      )

  def _draw_bar(self, losses, where, elapsed) -> None:
    fraction = self.done / max(1, self._total)
    filled = round(20 * fraction)
    text = (
      f'[{"#" * filled}{"-" * (20 - filled)}] {fraction:4.0%} {self.done}/{self._total} '
      + ''.join(f'{w} ' for w in where)
      + ' '.join(f'{name} {value:.3g}' for name, value in losses)
      + f' | {_duration(elapsed)}<{_duration(self.eta())}'
    )
    width = shutil.get_terminal_size((100, 20)).columns - 1
    self._stream.write('\r' + text[:width].ljust(width))
    self._stream.flush()
    self._open_line = True

  def close(self) -> None:
    """Ends the bar's line, so that what follows starts on a fresh line."""
    if self._open_line:
      self._stream.write('\n')
      self._stream.flush()
      self._open_line = False
