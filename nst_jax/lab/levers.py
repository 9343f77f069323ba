"""Optimizer levers measured in objective evaluations, which a busy machine cannot distort.

On a CPU an objective evaluation (the network's forward and backward pass) is nearly all of a
step's cost, so a run's time is its start-up plus its evaluations times the cost of one. This
module runs configs on pairs and records, after every step at the final scale, the evaluations
spent so far and the objective reached: the count is exact and repeatable however loaded the
machine is, while seconds are not (`scripts/quality_curve.py` measures those, whole process
against whole process). Evaluations at a coarser scale count in proportion to its pixels (a
half-size evaluation as a quarter), which is what they cost, to within the network's fixed
overheads.

    pastiche = 'configs/compare/pastiche.py'
    report = levers.study([pastiche, f'{pastiche}@optim.lbfgs_memory=50'],
                          [('content.png', 'style.png')], budget=100)
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from nst_jax.core import vgg
from nst_jax.errors import ConfigError
from nst_jax.io import images, paths, weights
from nst_jax.run import config as config_lib
from nst_jax.run import engine


@dataclasses.dataclass(frozen=True)
class Curve:
  """One run of one config on one pair.

  Attributes:
    evaluations: after each step at the final scale, the objective evaluations spent so far
      (coarser scales' weighted by their share of the final size's pixels).
    objective: the objective of the image after that step (its own: in [0, 1], not rounded).
    steps: steps taken at each scale.
    seconds: wall time of the run (targets, compilation and every step).
    seconds_per_evaluation: wall time per evaluation at the final scale, chunks after the first
      (so without compilation).
  """

  evaluations: list[float]
  objective: list[float]
  steps: list[int]
  seconds: float
  seconds_per_evaluation: float


def evaluation_curve(
  config: ml_collections.ConfigDict,
  content: np.ndarray,
  style: np.ndarray,
  *,
  budget: float,
  network: tuple[vgg.VGG19, Any] | None = None,
) -> Curve:
  """Runs `config` on one pair until `budget` evaluations are spent (or its steps are done).

  Args:
    config: any config; its final scale runs until the budget whatever its `num_steps`.
    content: (H, W, 3) in [0, 1], at the final size; style: (Hs, Ws, 3) in [0, 1].
    budget: evaluations (in final-size units) after which the run stops, at a chunk's end.
    network: `(VGG19, params)`, default the config's weights.
  """
  start = time.perf_counter()
  prepared = engine.prepare(content[None], [style], config, network=network)
  final = len(prepared.sizes) - 1
  pixels = [h * w for h, w in prepared.sizes]
  spent, curve, steps, state = 0.0, ([], []), [], None
  steady = [0.0, 0.0]  # Seconds and evaluations of the final scale's chunks after the first.
  for scale, num_steps in enumerate(prepared.steps):
    state = prepared.start_state(scale, state)
    weights = prepared.pair_weights(scale, state)
    share = pixels[scale] / pixels[final]
    limit = num_steps if scale < final else max(num_steps, int(budget) + 1)
    done, chunks = 0, 0
    while done < limit and (scale < final or spent < budget):
      begin = time.perf_counter()
      state, (totals, counts), (total, _) = jax.block_until_ready(
        prepared.program.run_chunk(prepared.params, state, weights, jnp.int32(limit))
      )
      count = int(state.step) - done
      counts = np.asarray(counts)[:count, 0]
      spent_before = spent
      spent += share * float(counts.sum())
      if scale == final:
        after = np.append(np.asarray(totals)[1:count, 0], np.asarray(total)[0])
        curve[0].extend((spent_before + share * np.cumsum(counts)).tolist())
        curve[1].extend(map(float, after))
        if chunks:
          steady[0] += time.perf_counter() - begin
          steady[1] += float(counts.sum())
      done, chunks = done + count, chunks + 1
      if not np.isfinite(np.asarray(total)).all():
        break
    steps.append(done)
  return Curve(
    evaluations=curve[0],
    objective=curve[1],
    steps=steps,
    seconds=time.perf_counter() - start,
    seconds_per_evaluation=steady[0] / steady[1] if steady[1] else float('nan'),
  )


def evaluations_to_reach(curve: Curve, target: float) -> float:
  """The evaluations spent when the curve first got to `target` or below; infinity if never."""
  for spent, value in zip(curve.evaluations, curve.objective, strict=True):
    if value <= target:
      return spent
  return float('inf')


def study(
  specs: Sequence[str],
  pairs: Sequence[tuple[str, str]],
  *,
  budget: float,
  targets: Sequence[float] = (),
  output: str | None = None,
) -> dict[str, Any]:
  """Every config on every pair, in evaluations (`scripts/optimizer_levers.py`).

  Args:
    specs: configs as `FILE[@field=value...]`; each pair runs at its content's size.
    pairs: `(content file, style file)`, each already at the size to run (the style at its own).
    budget: evaluations per run (final-size units).
    targets: one objective per pair (e.g. pastiche's best saved image): the report then gives
      the evaluations each config took to reach it. Default: the first config's objective at
      half the budget.
    output: a JSON file to write the report to.

  Returns:
    `{budget, pairs: [{content, style, target}], runs: {spec: {curves: [per pair: Curve as a
    dict], to_target: [per pair], at_budget: [per pair: objective after `budget` evaluations
    relative to the target]}}}`.
  """
  if targets and len(targets) != len(pairs):
    raise ConfigError(f'{len(targets)} targets for {len(pairs)} pairs')
  if output is not None:
    paths.check_folder_writable(pathlib.Path(output).parent, '--output')
  configs = {spec: config_lib.from_spec(spec) for spec in specs}
  first = next(iter(configs.values()))
  network = weights.load_vgg19(
    first.network.weights,
    pooling=first.network.pooling,
    dtype=jnp.dtype(first.network.dtype),
  )
  loaded = [(images.load_image(c), images.load_image(s)) for c, s in pairs]
  curves: dict[str, list[Curve]] = {spec: [] for spec in specs}
  for i, (content, style) in enumerate(loaded):
    for spec, config in configs.items():
      config = ml_collections.ConfigDict(config.to_dict())
      config.image_size = max(content.shape[:2])
      config_lib.validate(config)
      curves[spec].append(evaluation_curve(config, content, style, budget=budget, network=network))
      logging.info('pair %d, %s: %.1f s', i, spec, curves[spec][-1].seconds)
  if not targets:
    first_curves = curves[specs[0]]
    targets = [value_at(c, budget / 2) for c in first_curves]
  report = {
    'budget': budget,
    'pairs': [
      {'content': c, 'style': s, 'target': float(t)}
      for (c, s), t in zip(pairs, targets, strict=True)
    ],
    'runs': {
      spec: {
        'curves': [dataclasses.asdict(c) for c in per_pair],
        'to_target': [evaluations_to_reach(c, t) for c, t in zip(per_pair, targets, strict=True)],
        'at_budget': [value_at(c, budget) / t for c, t in zip(per_pair, targets, strict=True)],
      }
      for spec, per_pair in curves.items()
    },
  }
  if output is not None:
    pathlib.Path(output).write_text(json.dumps(report, indent=1) + '\n')
  return report


def value_at(curve: Curve, evaluations: float) -> float:
  """The objective reached within `evaluations` (the lowest so far)."""
  reached = [v for e, v in zip(curve.evaluations, curve.objective, strict=True) if e <= evaluations]
  return float(min(reached)) if reached else float('inf')


def table(report: dict[str, Any]) -> str:
  """The report as a Markdown table: per config, the evaluations to each pair's target and their
  median, the median objective after the budget relative to the target, and the median wall time
  per evaluation relative to the first config's on the same pair (a cost the count misses)."""
  count = len(report['pairs'])
  head = ['config', *(f'pair {i + 1}' for i in range(count)), 'median', 'at budget / target']
  head.append('s / evaluation vs first')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  first = next(iter(report['runs'].values()))
  for spec, run in report['runs'].items():
    reached = run['to_target']
    cells = [f'{r:.0f}' if np.isfinite(r) else 'not reached' for r in reached]
    median = float(np.median(reached))
    cells.append(f'{median:.0f}' if np.isfinite(median) else 'not reached')
    cells.append(f'{np.median(run["at_budget"]):.3f}')
    cost = [
      c['seconds_per_evaluation'] / f['seconds_per_evaluation']
      for c, f in zip(run['curves'], first['curves'], strict=True)
    ]
    cells.append(f'{np.median(cost):.2f}')
    lines.append('| ' + ' | '.join([spec, *cells]) + ' |')
  return '\n'.join(lines)
