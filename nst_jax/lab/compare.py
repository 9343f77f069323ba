"""Side-by-side comparison of style objectives: `scripts/compare_methods.py`.

For every style image, one sheet: the contents as rows, the methods as columns (Gram, Gaussian,
sliced Wasserstein, nearest neighbours, hq), each cell the result of that method. Methods whose
configs differ only in their objective (the terms and the loss settings) run as one batch for
each content, through per-pair term weights (`stylize(..., pair_weights=...)`): one compiled
program in which each pair has its own objective. The others run alone. Each batch's wall time is
recorded (it includes compiling the first time a program runs).

Every result is scored with the project's own evaluation objectives, the same for all methods:
content MSE at relu4_2 and the Gram and Gaussian (mean/covariance W2) style losses at
relu1_1..relu5_1 (`evaluation_terms`), computed on the saved 8-bit image. `results.json` holds
every score and time, and `scores.md` the tables for docs/objectives.md.
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import sheets
from nst_jax.core import losses
from nst_jax.core.terms import LossTerm, terms_from_config
from nst_jax.errors import ConfigError
from nst_jax.io import images, paths, weights
from nst_jax.lab import evaluation
from nst_jax.run import config as config_lib
from nst_jax.run import engine, schedule

# Each method: a config file in configs/ and the overrides it applies (`config.apply_override`).
# Gram, Gaussian and sliced share configs/sliced.py's schedule (one scale, Adam), so that only
# the style loss differs between them and they run as one batch, each with the same relative
# weight (the losses are normalised). Nearest neighbours is NNST's recipe: configs/nnst.py's
# matching alone, with NNST's colours.
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
  'gram': ('sliced.py', ('losses.sliced.weight=0', 'losses.gram.weight=1')),
  'gaussian': ('sliced.py', ('losses.sliced.weight=0', 'losses.gaussian.weight=1')),
  'sliced': ('sliced.py', ()),
  'nearest_neighbor': (
    'nnst.py',
    ('losses.gram.weight=0', 'losses.content.weight=0', 'color_control=nnst'),
  ),
  'hq': ('hq.py', ()),
}
# The fields that define an objective; configs equal in every other field share a schedule.
OBJECTIVE_FIELDS = frozenset({'losses'})


def method_configs(
  methods: Sequence[str],
  *,
  configs_dir: str | pathlib.Path,
  size: int,
  steps: int = 0,
  overrides: Sequence[str] = (),
) -> dict[str, ml_collections.ConfigDict]:
  """Each method's config, read from `configs_dir`, at `size` px (and `steps` at every scale, if
  > 0), with `overrides` ('field=value', see `config.apply_override`) applied, validated."""
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ConfigError(f'--methods: unknown {unknown}; choose from {", ".join(METHODS)}')
  out = {}
  for name in methods:
    file, changes = METHODS[name]
    config = config_lib.from_file(pathlib.Path(configs_dir) / file)
    for override in (*changes, f'image_size={size}', *overrides):
      config_lib.apply_override(config, override)
    if steps > 0:
      config.schedule.num_steps = config.schedule.coarse_steps = steps
    config_lib.validate(config)
    out[name] = config
  return out


def schedule_key(config: ml_collections.ConfigDict) -> str:
  """Everything but the objective: configs with equal keys can share one batch."""
  fields = {k: v for k, v in config.to_dict().items() if k not in OBJECTIVE_FIELDS}
  return json.dumps(fields, sort_keys=True, default=str)


def group_methods(configs: Mapping[str, ml_collections.ConfigDict]) -> list[list[str]]:
  """The methods in groups of equal schedule, in order of first appearance."""
  groups: dict[str, list[str]] = {}
  for name, config in configs.items():
    groups.setdefault(schedule_key(config), []).append(name)
  return list(groups.values())


def combined_terms(
  configs: Mapping[str, ml_collections.ConfigDict], methods: Sequence[str]
) -> tuple[dict[str, LossTerm], dict[str, np.ndarray]]:
  """One objective for a batch with one pair per method, and each pair's term weights.

  Terms that are equal but for their weight (the content term, say) are shared; others get the
  method's name as a prefix when their name is taken. Pair i has the weights of method i's
  terms and 0 for the other methods' terms.
  """
  chosen: dict[str, LossTerm] = {}
  weights: dict[str, np.ndarray] = {}
  for i, method in enumerate(methods):
    for name, term in terms_from_config(configs[method]).items():
      unweighted = term._replace(weight=1.0)
      shared = next((n for n, t in chosen.items() if t == unweighted), None)
      if shared is None:
        shared = name if name not in chosen else f'{method}.{name}'
        chosen[shared] = unweighted
        weights[shared] = np.zeros(len(methods), np.float32)
      weights[shared][i] = term.weight
  return chosen, weights


def evaluation_terms() -> dict[str, LossTerm]:
  """The scores: content MSE (relu4_2) and Gram and Gaussian style losses (relu1_1..relu5_1),
  with the library's default layers and weights."""
  config = config_lib.default_config()
  return {
    'content': losses.content_term(config.losses.content.layers),
    'gram': losses.gram_term(config.losses.gram.layers),
    'gaussian': losses.gaussian_term(config.losses.gaussian.layers),
  }


def score(
  results: np.ndarray, content: np.ndarray, style: np.ndarray, network: tuple[Any, Any]
) -> list[dict[str, float]]:
  """`evaluation_terms` of each of the (M, H, W, 3) `results` (as saved: 8-bit) against one
  content (H, W, 3) and style, one dict per result."""
  contents = np.repeat(content[None], len(results), axis=0)
  evaluator = evaluation.Evaluator(contents, [style], terms=evaluation_terms(), network=network)
  values = evaluator(results).terms
  return [{name: float(v[i]) for name, v in values.items()} for i in range(len(results))]


@dataclasses.dataclass
class Record:
  """One result: which style, content and method; its batch's time and methods; its scores."""

  style: str
  content: str
  method: str
  seconds: float
  batch: list[str]
  scores: dict[str, float]
  image: str


def _geometric_mean(values: Sequence[float]) -> float:
  values = np.maximum(np.asarray(values, np.float64), 1e-30)
  return float(np.exp(np.mean(np.log(values))))


def score_tables(found: Sequence[Record], methods: Sequence[str]) -> str:
  """Markdown: each method's geometric-mean scores over all pairs, and its batches' times."""
  lines = [
    '| method | content (MSE relu4_2) | Gram style | Gaussian style | seconds per content '
    'and style | run with |',
    '|---|---|---|---|---|---|',
  ]
  for method in methods:
    mine = [r for r in found if r.method == method]
    if not mine:
      continue
    score_cells = [
      f'{_geometric_mean([r.scores[k] for r in mine]):.4g}' for k in ('content', 'gram', 'gaussian')
    ]
    batch = ', '.join(mine[0].batch) if len(mine[0].batch) > 1 else 'alone'
    seconds = np.mean([r.seconds for r in mine])
    lines.append(f'| {method} | {" | ".join(score_cells)} | {seconds:.0f} | {batch} |')
  lines += [
    '',
    'Scores are geometric means over every content and style (lower is closer to the content, or',
    'to the style, by that measure), computed on the saved 8-bit images. Seconds are the wall',
    'time of the batch that made the result (shared by the methods run with it), compilation of',
    'its first run included.',
  ]
  per_style = ['', '| style | content | ' + ' | '.join(methods) + ' |']
  per_style.append('|---|---|' + '---|' * len(methods))
  for style in dict.fromkeys(r.style for r in found):
    for content in dict.fromkeys(r.content for r in found if r.style == style):
      cells = []
      for method in methods:
        r = next(
          (r for r in found if (r.style, r.content, r.method) == (style, content, method)), None
        )
        cells.append('' if r is None else f'{r.scores["gram"]:.3g} / {r.scores["gaussian"]:.3g}')
      per_style.append(f'| {style} | {content} | ' + ' | '.join(cells) + ' |')
  per_style.append('')
  per_style.append('Each cell: Gram / Gaussian style loss of that result.')
  return '\n'.join(lines + per_style) + '\n'


def compare_methods(
  *,
  contents: Sequence[str],
  styles: Sequence[str],
  output_dir: str,
  configs_dir: str | pathlib.Path,
  methods: Sequence[str] = tuple(METHODS),
  size: int = 384,
  steps: int = 0,
  overrides: Sequence[str] = (),
  sheet_format: str = 'jpg',
) -> list[Record]:
  """Runs every method on every (content, style) pair and writes the sheets and the scores.

  Writes `<style>.<sheet_format>` (one sheet per style), `cells/<content>__<style>__<method>.png`,
  `results.json` (one record per result) and `scores.md`, in `output_dir`.

  Args:
    contents, styles: image files.
    output_dir: folder for the outputs (created).
    configs_dir: the folder of the presets that `METHODS` name (the repository's `configs/`).
    methods: names from `METHODS`, in column order.
    size: longest side of the results in pixels.
    steps: if > 0, every method's steps at every scale (for quick looks); 0: each preset's own.
    overrides: 'field=value' set in every method's config after its own changes.
    sheet_format: 'jpg' or 'png'.

  Returns:
    The records, also written to `results.json`.

  Raises:
    ConfigError, ImageError: bad settings or inputs, before the weights load.
  """
  if not contents or not styles:
    raise ConfigError('give at least one content (--contents) and one style (--styles)')
  if sheet_format not in ('jpg', 'png'):
    raise ConfigError(f"--sheet_format={sheet_format!r} must be 'jpg' or 'png'")
  if size < 16:
    raise ConfigError(f'--size={size} is too small (at least 16 pixels)')
  configs = method_configs(
    methods, configs_dir=configs_dir, size=size, steps=steps, overrides=overrides
  )
  out = pathlib.Path(output_dir)
  paths.check_folder_writable(out, '--output_dir')
  style_side = max(schedule.final_style_side(c) for c in configs.values())
  style_images = {p: images.load_image(p, max_side=style_side, label='style image') for p in styles}
  content_images = {p: images.load_image(p, max_side=size, label='content image') for p in contents}
  groups = group_methods(configs)
  networks: dict[tuple[str, str, str], Any] = {}

  def network(config: ml_collections.ConfigDict) -> Any:
    key = (config.network.weights, config.network.pooling, config.network.dtype)
    if key not in networks:
      networks[key] = weights.load_vgg19(
        config.network.weights,
        pooling=config.network.pooling,
        dtype=jnp.dtype(config.network.dtype),
      )
    return networks[key]

  scorer = network(config_lib.default_config())
  (out / 'cells').mkdir(parents=True, exist_ok=True)
  found: list[Record] = []
  for style_path, style in style_images.items():
    style_name = pathlib.Path(style_path).stem
    rows = []
    for content_path, content in content_images.items():
      content_name = pathlib.Path(content_path).stem
      results: dict[str, np.ndarray] = {}
      made: dict[str, tuple[float, list[str]]] = {}
      for group in groups:
        config = configs[group[0]]
        options: dict[str, Any] = {'network': network(config)}
        batch = np.repeat(content[None], len(group), axis=0)
        if len(group) > 1:
          options['terms'], options['pair_weights'] = combined_terms(configs, group)
        start = time.perf_counter()
        result = engine.stylize(batch, [style], config, **options)
        seconds = time.perf_counter() - start
        logging.info('%s x %s: %s in %.1f s', content_name, style_name, '+'.join(group), seconds)
        for method, image in zip(group, result.images, strict=True):
          results[method] = image
          made[method] = seconds, list(group)
      scores = score(np.stack([results[m] for m in methods]), content, style, scorer)
      for method, scored in zip(methods, scores, strict=True):
        cell = out / 'cells' / f'{content_name}__{style_name}__{method}.png'
        images.save_image(cell, results[method], label='result')
        seconds, group = made[method]
        found.append(
          Record(
            style_name, content_name, method, seconds, group, scored, str(cell.relative_to(out))
          )
        )
      rows.append([results[m] for m in methods])
    sheet = sheets.compose_sheet(style, list(content_images.values()), rows, list(methods))
    images.save_image(out / f'{style_name}.{sheet_format}', sheet, label='comparison sheet')
  records_json = json.dumps([dataclasses.asdict(r) for r in found], indent=1)
  (out / 'results.json').write_text(records_json + '\n')
  (out / 'scores.md').write_text(score_tables(found, list(methods)))
  return found
