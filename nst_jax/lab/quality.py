"""Quality against time: the value of a fixed evaluation objective that a run reaches, and when.

`compare` (`scripts/quality_curve.py`) runs configs and pastiche 1.6 on the same pairs, each run
a whole process (`nst_jax.lab.runs`), and scores every image they saved with one `Evaluator`:
each checkpoint is a `Point` (wall time since the process started, the steps and evaluations
done, the objective of the image as saved). `time_to_reach` reads off when a curve first gets
to a target value, `at_times` the best objective reached by given wall times. In-process
measurements in evaluations, which a busy machine does not distort: `nst_jax.lab.levers`.
"""

import dataclasses
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging

from nst_jax.app import records
from nst_jax.core import resample
from nst_jax.errors import ConfigError
from nst_jax.io import images, paths, weights
from nst_jax.lab import evaluation, runs
from nst_jax.run import config as config_lib
from nst_jax.run import schedule


@dataclasses.dataclass(frozen=True)
class Point:
  """One checkpoint of a run.

  Attributes:
    seconds: wall time since the run started, scoring excluded.
    step: steps done, over all scales.
    scale: the scale running (0 = coarsest).
    objective: the evaluation objective of each pair's image as saved, one value per pair.
    evaluations: objective evaluations done by then (each with its gradient), one per pair;
      empty where unknown.
  """

  seconds: float
  step: int
  scale: int
  objective: tuple[float, ...]
  evaluations: tuple[int, ...] = ()


def time_to_reach(points: Sequence[Point], target: Sequence[float]) -> list[float]:
  """For each pair, the seconds of the first point whose objective is at most the pair's
  `target`; infinity if none is."""
  out = []
  for b, goal in enumerate(target):
    reached = [p.seconds for p in points if p.objective[b] <= goal]
    out.append(reached[0] if reached else float('inf'))
  return out


def at_times(points: Sequence[Point], times: Sequence[float], pair: int = 0) -> list[float]:
  """The lowest objective of `pair` saved by each of `times` (seconds); infinity before the
  first saved image."""
  out = []
  for t in times:
    reached = [p.objective[pair] for p in points if p.seconds <= t]
    out.append(min(reached) if reached else float('inf'))
  return out


def plot(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str, targets=()):
  """A PNG-ready plot of `{label: (seconds, objective)}` (log scale), one line per run;
  `targets` are drawn as dashed lines."""
  return records.plot_losses(
    curves, title=title, x_label='seconds', horizontal=targets, size=(900, 520)
  )


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
  scripts_dir: str,
  pastiche_python: str | None = None,
  pastiche_steps: int = 400,
  every: int = 10,
) -> dict[str, Any]:
  """`scripts/quality_curve.py`: every config, and pastiche, on every pair, each run a whole
  process, interleaved (pair by pair, the order of the runs turning by one each pair); every
  saved image scored with one evaluation objective. Writes `quality.json` and `quality.png` into
  `output_dir` and returns the report (see the script's docstring).

  Args:
    specs: configs as `FILE[@field=value...]`, run by `scripts/stylize.py`; `image_size` becomes
      `size`.
    contents, styles: image files; pair i is content i with style i.
    size: the final longest side of every run.
    eval_spec: the evaluation objective's config; '' for `evaluation.classic_objective()`.
    output_dir: where the report, the plot and every run's files go.
    scripts_dir: the folder with `stylize.py` and `pastiche_reference.py`.
    pastiche_python: a python with torch and pastiche: adds pastiche's curve
      (`scripts/pastiche_reference.py`), and each run's time to reach pastiche's best saved
      image.
    pastiche_steps: pastiche's L-BFGS steps.
    every: steps between saved images (each config's chunk size is set to it).
  """
  if len(contents) != len(styles) or not contents:
    raise ConfigError('give as many --styles as --contents (pair i is content i with style i)')
  folder, scripts = pathlib.Path(output_dir), pathlib.Path(scripts_dir)
  paths.check_folder_writable(folder, '--output_dir')
  labels = {}
  for spec in specs:
    config = config_lib.from_spec(spec)  # Fails here, before anything runs, on a bad spec.
    config.image_size = size
    config_lib.validate(config)
    labels[_label(spec)] = f'{spec}@image_size={size}'
  eval_config = config_lib.from_spec(eval_spec) if eval_spec else evaluation.classic_objective()
  network = weights.load_vgg19(eval_config.network.weights)
  report: dict[str, Any] = {'size': size, 'eval_config': eval_spec, 'pairs': [], 'runs': {}}
  curves: dict[str, list[list[Point]]] = {label: [] for label in labels}
  seconds: dict[str, list[float]] = {label: [] for label in labels}
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
    entry: dict[str, Any] = {'content': content_path, 'style': style_path}
    order = [*labels] + (['pastiche'] if pastiche_python else [])
    order = order[i % len(order) :] + order[: i % len(order)]
    done = {}
    for label in order:
      logging.info('pair %d: %s', i, label)
      run_folder = str(folder / f'pair{i}' / label.replace(' ', '_'))
      if label == 'pastiche':
        side = max(style.shape[:2])
        done[label] = runs.run_pastiche(
          scripts, pastiche_python, *files, side, run_folder, pastiche_steps, every
        )
      else:
        done[label] = runs.run_stylize(scripts, labels[label], *files, run_folder, every)
    evaluator = evaluation.Evaluator(content, [style], eval_config, network=network)
    for label in order:
      points = _score(done[label].saved, evaluator, content.shape[1:3])
      if label == 'pastiche':
        reference.append(points)
        best = min(points, key=lambda p: p.objective[0])
        entry['pastiche'] = {
          'best': best.objective[0],
          'best_step': best.step,
          'best_seconds': best.seconds,
          'seconds': done[label].seconds,
        }
      else:
        curves[label].append(points)
        seconds[label].append(done[label].seconds)
    report['pairs'].append(entry)
  first = [points[-1].objective[0] for points in next(iter(curves.values()))]
  for label, per_pair in curves.items():
    report['runs'][label] = _summary(
      labels[label], per_pair, seconds[label], report['pairs'], first
    )
  if reference:
    report['pastiche'] = [[dataclasses.asdict(p) for p in points] for points in reference]
    report['pastiche_seconds_per_evaluation'] = [_per_evaluation(p) for p in reference]
    report['equal_times'] = _equal_times({**curves, 'pastiche 1.6': reference}, report['pairs'])
    medians = report['equal_times']['median']
    plotted = {label: (report['equal_times']['seconds'], m) for label, m in medians.items()}
    title = "objective of the saved images / pastiche's best, median over pairs, at equal times"
    plot(plotted, title=title, targets=[1.0]).save(folder / 'quality.png')
  else:
    plotted = {
      label: ([p.seconds for p in points[0]], [p.objective[0] for p in points[0]])
      for label, points in curves.items()
    }
    plot(plotted, title='evaluation objective against wall time, first pair').save(
      folder / 'quality.png'
    )
  (folder / 'quality.json').write_text(json.dumps(report, indent=1) + '\n')
  return report


def _score(saved: Sequence[runs.Saved], evaluator, size) -> list[Point]:
  """The saved images of one run as points, scored as saved (resized to `size` first, where a
  coarser scale saved them)."""
  points = []
  for s in saved:
    image = images.load_image(s.path)
    if image.shape[:2] != tuple(size):
      image = np.asarray(resample.resize(image[None], tuple(size))[0])
    total = float(evaluator(image[None]).total[0])
    points.append(Point(s.seconds, s.step, 0, (total,), (s.evaluations,)))
  return points


def _per_evaluation(points: Sequence[Point]) -> float:
  """Wall seconds per objective evaluation between a run's first and last saved image."""
  first, last = points[0], points[-1]
  if not (first.evaluations and last.evaluations) or last.evaluations[0] == first.evaluations[0]:
    return float('nan')
  return (last.seconds - first.seconds) / (last.evaluations[0] - first.evaluations[0])


def _equal_times(curves: dict[str, list[list[Point]]], pairs: Sequence[dict]) -> dict[str, Any]:
  """Each run's best saved objective by each second, relative to pastiche's best on the pair:
  `{seconds, pairs: {label: [per pair: [...]]}, median: {label: [...]}}` (median over pairs)."""
  end = max(p.seconds for per_pair in curves.values() for points in per_pair for p in points)
  times = [float(t) for t in np.arange(0.0, np.ceil(end) + 1.0)]
  best = [pair['pastiche']['best'] for pair in pairs]
  relative = {
    label: [
      [v / b for v in at_times(points, times)] for points, b in zip(per_pair, best, strict=True)
    ]
    for label, per_pair in curves.items()
  }
  return {
    'seconds': times,
    'pairs': relative,
    'median': {label: np.median(r, axis=0).tolist() for label, r in relative.items()},
  }


def _summary(
  spec: str,
  per_pair: Sequence[Sequence[Point]],
  seconds: Sequence[float],
  pairs: Sequence[dict],
  first: Sequence[float],
) -> dict[str, Any]:
  """A run's entry in the report: its spec, every point, when it reached the first run's final
  value (`first`, one per pair), its cost per evaluation, and how it compares to pastiche."""
  summary = {
    'spec': spec,
    'points': [[dataclasses.asdict(p) for p in points] for points in per_pair],
    'final': [points[-1].objective[0] for points in per_pair],
    'seconds': list(seconds),
    'seconds_per_evaluation': [_per_evaluation(points) for points in per_pair],
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
    summary['median_speedup'] = float(np.median(summary['speedup']))
  return summary
