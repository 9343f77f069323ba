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
  'batch 2/5' where there are several. The ETA counts a step by its scale's pixels, relative to
  the final scale's, so that a coarse-to-fine run does not promise the fine steps at the
  coarse steps' pace.
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
    square = (config.image_size, config.image_size)
    pixels = [h * w for h, w in schedule.scale_sizes(square, config)]
    self._scale_cost = [p / pixels[-1] for p in pixels]  # Of a step, in final-scale steps.
    self._batch_work = float(np.dot(self._scale_steps, self._scale_cost))
    self._num_batches = num_batches
    self._labels = list(labels) if labels is not None else None
    self._total = self._batch_steps * num_batches
    self._start = clock()
    self._batch = -1
    self._last: tuple[Any, float, float] | None = None
    # Seconds and work (final-scale steps) between reports of the same compiled program.
    self._steady = [0.0, 0.0]
    self._work = 0.0
    self._open_line = False
    self.done = 0

  def start_batch(self, index: int) -> None:
    self._batch = index

  def batch_step(self, progress: Progress) -> int:
    """Steps done in the current batch, over all scales."""
    return sum(self._scale_steps[: progress.scale]) + progress.step

  def _work_in_batch(self, progress: Progress) -> float:
    """Work done in the current batch, in final-scale steps."""
    done = self._scale_steps[: progress.scale] + [progress.step]
    return float(np.dot(done, self._scale_cost[: progress.scale + 1]))

  def eta(self) -> float | None:
    seconds, work = self._steady
    left = self._batch_work * self._num_batches - self._work
    return None if work == 0 else seconds / work * left

  def __call__(self, progress: Progress) -> None:
    now = self._clock()
    self.done = max(0, self._batch) * self._batch_steps + self.batch_step(progress)
    self._work = max(0, self._batch) * self._batch_work + self._work_in_batch(progress)
    segment = (self._batch, progress.scale)
    if self._last is not None and self._last[0] == segment:
      self._steady[0] += now - self._last[1]
      self._steady[1] += self._work - self._last[2]
    self._last = (segment, now, self._work)
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
