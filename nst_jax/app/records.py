"""A run's record in its workdir: the loss history (JSON lines and a plot), config and run info."""

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np
from PIL import Image, ImageDraw

from nst_jax.app import sheets
from nst_jax.io import files
from nst_jax.run.history import History


@dataclasses.dataclass
class BatchRecord:
  """One `stylize` call of a run: its pairs' names, final size, history and time."""

  pairs: list[str]
  size: tuple[int, int]
  history: History | None = None
  seconds: float = 0.0


def _floats(values: Any) -> list[float | None]:
  return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def history_lines(batches: Sequence[BatchRecord]) -> Iterator[dict[str, Any]]:
  """One record per step at which the terms were evaluated (each chunk's end).

  Each has `batch`, `pairs` (names), `step` (counted over all scales), `scale`, `total` (the
  objective, one value per pair), `terms` (`{name: [unweighted value per pair]}`) and
  `evaluations` (objective evaluations so far, one count per pair; see `History.evaluations`).
  """
  for b, record in enumerate(batches):
    history = record.history
    if history is None:
      continue
    for k, step in enumerate(history.term_steps):
      step = int(step)
      terms = {name: values[k] for name, values in history.terms.items()}
      total = history.term_totals[k]
      scale = history.scale[step - 1]
      yield {
        'batch': b,
        'pairs': record.pairs,
        'step': step,
        'scale': int(scale),
        'total': _floats(total),
        'terms': {name: _floats(v) for name, v in terms.items()},
        'evaluations': [int(n) for n in history.evaluations[:step].sum(axis=0)],
      }


CURVE_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189))


def plot_losses(
  curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
  *,
  title: str = '',
  markers: Sequence[float] = (),
  size: tuple[int, int] = (800, 480),
  x_label: str = 'step',
  horizontal: Sequence[float] = (),
) -> Image.Image:
  """Draws loss curves `{label: (xs, values)}` on a log-scale y axis, with a legend.

  Non-positive and non-finite values are left out (a log scale cannot show them). `markers` are
  x values drawn as light vertical lines (e.g. where a new scale starts), `horizontal` y values
  drawn as dashed lines (e.g. a target).
  """
  width, height = size
  left, right, top, bottom = 78, 20, 34, 46
  image = Image.new('RGB', size, 'white')
  draw = ImageDraw.Draw(image)
  font, small = sheets.font(14), sheets.font(12)
  points = {}
  for label, (xs, ys) in curves.items():
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys) & (ys > 0)
    if keep.any():
      points[label] = (xs[keep], np.log10(ys[keep]))
  draw.text((left, 8), title, fill='black', font=font)
  box = (left, top, width - right, height - bottom)
  draw.rectangle(box, outline='black')
  if not points:
    draw.text((left + 10, top + 10), 'no positive loss values to plot', fill='black', font=font)
    return image
  all_x = np.concatenate([x for x, _ in points.values()])
  all_y = np.concatenate([y for _, y in points.values()])
  x0, x1 = float(all_x.min()), float(all_x.max())
  x1 = x1 if x1 > x0 else x0 + 1
  y0, y1 = math.floor(all_y.min()), math.ceil(all_y.max())
  y1 = y1 if y1 > y0 else y0 + 1

  def to_pixel(x, y):
    px = box[0] + (x - x0) / (x1 - x0) * (box[2] - box[0])
    py = box[3] - (y - y0) / (y1 - y0) * (box[3] - box[1])
    return px, py

  decade_step = max(1, math.ceil((y1 - y0) / 10))
  for decade in range(y0, y1 + 1, decade_step):
    _, py = to_pixel(x0, decade)
    draw.line((box[0], py, box[2], py), fill=(225, 225, 225))
    draw.text((box[0] - 6, py), f'1e{decade}', fill='black', font=small, anchor='rm')
  for marker in markers:
    if x0 < marker < x1:
      px, _ = to_pixel(marker, y0)
      draw.line((px, box[1], px, box[3]), fill=(200, 200, 235))
  tick = 10 ** math.floor(math.log10((x1 - x0) / 5 or 1))
  tick *= next(m for m in (1, 2, 5, 10) if (x1 - x0) / (tick * m) <= 8)
  for x in np.arange(math.ceil(x0 / tick) * tick, x1 + tick / 2, tick):
    px, _ = to_pixel(x, y0)
    draw.line((px, box[3], px, box[3] + 4), fill='black')
    draw.text((px, box[3] + 6), f'{x:g}', fill='black', font=small, anchor='mt')
  draw.text(((box[0] + box[2]) / 2, height - 6), x_label, fill='black', font=small, anchor='mb')
  for y in horizontal:
    if y > 0 and y0 < math.log10(y) < y1:
      _, py = to_pixel(x0, math.log10(y))
      for px in range(int(box[0]), int(box[2]), 12):
        draw.line((px, py, min(px + 6, box[2]), py), fill=(90, 90, 90))
  colours = {label: CURVE_COLOURS[i % len(CURVE_COLOURS)] for i, label in enumerate(points)}
  for label, (xs, ys) in points.items():
    pixels = [to_pixel(x, y) for x, y in zip(xs, ys, strict=True)]
    if len(pixels) > 1:
      draw.line(pixels, fill=colours[label], width=2, joint='curve')
    for px, py in pixels if len(pixels) <= 60 else pixels[-1:]:
      draw.ellipse((px - 2.5, py - 2.5, px + 2.5, py + 2.5), fill=colours[label])
  # Legend: top right, on white, over the curves.
  text_width = max(draw.textlength(label, font=small) for label in points)
  legend = (box[2] - text_width - 52, box[1] + 8, box[2] - 8, box[1] + 14 + 18 * len(points))
  draw.rectangle(legend, fill='white', outline=(160, 160, 160))
  for i, label in enumerate(points):
    ly = legend[1] + 12 + 18 * i
    draw.line((legend[0] + 8, ly, legend[0] + 32, ly), fill=colours[label], width=3)
    draw.text((legend[0] + 38, ly), label, fill='black', font=small, anchor='lm')
  return image


def loss_curves(
  batches: Sequence[BatchRecord], config: ml_collections.ConfigDict
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[int]]:
  """Curves for `plot_losses`: the mean over all pairs of each term, and of the objective. A
  batch cut short (Ctrl-C) counts in the mean of the steps it ran."""
  histories = [b.history for b in batches if b.history is not None]
  if not histories:
    return {}, []
  longest = max(histories, key=lambda h: len(h.total))
  curves = {}
  totals = _side_by_side([h.total for h in histories])
  if (totals[np.isfinite(totals)] > 0).all():
    curves['total'] = (np.arange(len(totals)), np.nanmean(totals, axis=1))
  for name in longest.terms:
    values = _side_by_side([h.terms[name] for h in histories if name in h.terms])
    weight = config.losses[name].weight if name in config.losses else None
    label = name if weight is None else f'{name} (x{float(weight):g})'
    curves[label] = (longest.term_steps, np.nanmean(values, axis=1))
  markers = [int(i) for i in np.flatnonzero(np.diff(longest.scale)) + 1]
  return curves, markers


def _side_by_side(values: Sequence[np.ndarray]) -> np.ndarray:
  """(T_i, B_i) arrays as one (max T_i, sum B_i), NaN after each one's end."""
  rows = max(len(v) for v in values)
  padded = [
    np.pad(v.astype(np.float64), ((0, rows - len(v)), (0, 0)), constant_values=np.nan)
    for v in values
  ]
  return np.concatenate(padded, axis=1)


def write_workdir(
  workdir: str | os.PathLike,
  config: ml_collections.ConfigDict,
  batches: Sequence[BatchRecord],
  info: Mapping[str, Any],
) -> None:
  """Writes config.json, run.json, and with a history, history.jsonl and loss.png."""
  folder = pathlib.Path(workdir)
  folder.mkdir(parents=True, exist_ok=True)
  _write_text(folder / 'config.json', config.to_json_best_effort(indent=2, sort_keys=True) + '\n')
  run_info = {
    **info,
    'batches': [
      {
        'pairs': b.pairs,
        'size': list(b.size),
        'seconds': round(b.seconds, 3),
        # Steps each pair took at each scale (fewer where it stopped on a plateau).
        'steps': None if b.history is None else b.history.pair_steps.T.tolist(),
      }
      for b in batches
    ],
  }
  _write_text(folder / 'run.json', json.dumps(run_info, indent=2) + '\n')
  if any(b.history is not None for b in batches):
    lines = (json.dumps(record) for record in history_lines(batches))
    _write_text(folder / 'history.jsonl', ''.join(line + '\n' for line in lines))
    curves, markers = loss_curves(batches, config)
    pairs = sum(len(b.pairs) for b in batches)
    plot = plot_losses(
      curves, title=f'losses, mean over {pairs} pair(s) (unweighted terms)', markers=markers
    )
    files.atomic_write(folder / 'loss.png', lambda f: plot.save(f, format='PNG'))


def _write_text(path: pathlib.Path, text: str) -> None:
  files.atomic_write(path, lambda f: f.write(text.encode()))
