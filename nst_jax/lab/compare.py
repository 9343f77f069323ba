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
every score and time, and `scores.md` the tables for the README.
"""

import ast
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
from PIL import Image, ImageDraw, ImageFont

from nst_jax.app import sheets
from nst_jax.core import objective, terms
from nst_jax.errors import ConfigError
from nst_jax.io import images, paths, weights
from nst_jax.lab import evaluation
from nst_jax.run import config as config_lib
from nst_jax.run import engine, schedule

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'

# Each method: a config file in configs/ and the fields it changes. Gram, Gaussian and sliced
# share configs/sliced.py's schedule (one scale, Adam), so that only the style loss differs
# between them and they run as one batch; the style weights are each loss's own scale.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
  'gram': ('sliced.py', {'style_loss': 'gram', 'terms.style': 5e-4}),
  'gaussian': ('sliced.py', {'style_loss': 'gaussian', 'terms.style': 50.0}),
  'sliced': ('sliced.py', {}),
  'nearest_neighbor': ('nnst.py', {}),
  'hq': ('hq.py', {}),
}

# The fields that define an objective; configs equal in every other field share a schedule.
OBJECTIVE_FIELDS = frozenset(
  {
    'terms',
    'style_loss',
    'content_loss',
    'content_layers',
    'style_layers',
    'tv_kind',
    'self_similarity_samples',
    'sliced_directions',
    'sliced_fixed_directions',
    'sliced_relative',
    'nn_layers',
    'nn_stride',
    'nn_rematch_every',
    'nn_content_mix',
    'nn_augment',
    'nn_block_size',
  }
)


def set_field(config: ml_collections.ConfigDict, field: str, value: Any) -> None:
  """`config.a.b = value` for `field` 'a.b'; `ConfigError` naming it if there is no such field."""
  *parents, last = field.split('.')
  node = config
  try:
    for name in parents:
      node = node[name]
    if last not in node:
      raise KeyError(last)
    node[last] = value
  except (KeyError, TypeError, AttributeError):
    raise ConfigError(f'override {field}={value!r}: the config has no field {field!r}') from None


def parse_override(text: str) -> tuple[str, Any]:
  """'num_scales=1' -> ('num_scales', 1): the value as a Python literal, else as a string."""
  field, sep, value = text.partition('=')
  if not sep or not field:
    raise ConfigError(f'--overrides: {text!r} is not field=value')
  try:
    return field.strip(), ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return field.strip(), value


def method_configs(
  methods: Sequence[str],
  *,
  size: int,
  steps: int = 0,
  overrides: Sequence[tuple[str, Any]] = (),
  configs_dir: pathlib.Path = CONFIGS,
) -> dict[str, ml_collections.ConfigDict]:
  """Each method's config at `size` px (and `steps` at every scale, if > 0), validated."""
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ConfigError(f'--methods: unknown {unknown}; choose from {", ".join(METHODS)}')
  out = {}
  for name in methods:
    file, changes = METHODS[name]
    config = config_lib.from_file(configs_dir / file)
    for field, value in (*changes.items(), ('image_size', size), *overrides):
      set_field(config, field, value)
    if steps > 0:
      config.num_steps = config.coarse_steps = steps
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
) -> tuple[dict[str, objective.LossTerm], dict[str, np.ndarray]]:
  """One objective for a batch with one pair per method, and each pair's term weights.

  Terms that are equal but for their weight (the content term, say) are shared; others get the
  method's name as a prefix when their name is taken. Pair i has the weights of method i's
  terms and 0 for the other methods' terms.
  """
  chosen: dict[str, objective.LossTerm] = {}
  weights: dict[str, np.ndarray] = {}
  for i, method in enumerate(methods):
    for name, term in terms.terms_from_config(configs[method]).items():
      unweighted = term._replace(weight=1.0)
      shared = next((n for n, t in chosen.items() if t == unweighted), None)
      if shared is None:
        shared = name if name not in chosen else f'{method}.{name}'
        chosen[shared] = unweighted
        weights[shared] = np.zeros(len(methods), np.float32)
      weights[shared][i] = term.weight
  return chosen, weights


def evaluation_terms() -> dict[str, objective.LossTerm]:
  """The scores: content MSE (relu4_2) and Gram and Gaussian style losses (relu1_1..relu5_1),
  with the library's default layers and weights."""
  config = config_lib.default_config()
  return {
    'content': terms.content_term(config.content_layers),
    'gram': terms.style_term(config.style_layers, 'gram'),
    'gaussian': terms.style_term(config.style_layers, 'gaussian'),
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


def _font(size: int) -> Any:
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, OSError, ImportError):  # Pillow without FreeType: the bitmap font.
    return ImageFont.load_default()


def _text(text: str, size: tuple[int, int], font_size: int) -> np.ndarray:
  """`text` in black, centred on a white (H, W, 3) float image, shrunk to fit its width."""
  canvas = Image.new('RGB', (size[1], size[0]), 'white')
  draw = ImageDraw.Draw(canvas)
  font = _font(font_size)
  while font_size > 6 and draw.textbbox((0, 0), text, font=font)[2] > 0.95 * size[1]:
    font_size -= 1
    font = _font(font_size)
  left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
  draw.text(
    ((size[1] - right + left) / 2 - left, (size[0] - bottom + top) / 2 - top),
    text,
    fill='black',
    font=font,
  )
  return np.asarray(canvas, np.float32) / 255.0


def compose_sheet(
  style: np.ndarray,
  contents: Sequence[np.ndarray],
  cells: Sequence[Sequence[np.ndarray]],
  labels: Sequence[str],
  gutter: int = 8,
) -> np.ndarray:
  """A white sheet: a header row (the style, then each column's label), then for each content a
  row with the content and its results, each fitted into a cell as large as the largest image."""
  height = max(im.shape[0] for row in cells for im in row)
  width = max(im.shape[1] for row in cells for im in row)
  header = max(32, height // 3)
  columns = [
    sheets.fit_and_pad(style, (header, width)),
    *(_text(label, (header, width), max(12, header // 3)) for label in labels),
  ]
  rows = [columns]
  for content, row in zip(contents, cells, strict=True):
    rows.append([sheets.fit_and_pad(im, (height, width)) for im in (content, *row)])
  sheet_rows = []
  for row in rows:
    h = row[0].shape[0]
    strip = np.ones((h, gutter + len(row) * (width + gutter), 3), np.float32)
    for j, im in enumerate(row):
      strip[:, gutter + j * (width + gutter) : gutter + j * (width + gutter) + width] = im
    sheet_rows += [np.ones((gutter, strip.shape[1], 3), np.float32), strip]
  sheet_rows.append(np.ones((gutter, sheet_rows[-1].shape[1], 3), np.float32))
  return np.concatenate(sheet_rows)


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
    methods, size=size, steps=steps, overrides=[parse_override(o) for o in overrides]
  )
  out = pathlib.Path(output_dir)
  paths.check_folder_writable(out, '--output_dir')
  style_side = max(schedule.final_style_side(c) for c in configs.values())
  style_images = {p: images.load_image(p, max_side=style_side, label='style image') for p in styles}
  content_images = {p: images.load_image(p, max_side=size, label='content image') for p in contents}
  groups = group_methods(configs)
  networks: dict[tuple[str, str, str], Any] = {}

  def network(config: ml_collections.ConfigDict) -> Any:
    key = (config.weights, config.pooling, config.dtype)
    if key not in networks:
      networks[key] = weights.load_vgg19(
        config.weights, pooling=config.pooling, dtype=jnp.dtype(config.dtype)
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
    sheet = compose_sheet(style, list(content_images.values()), rows, list(methods))
    images.save_image(out / f'{style_name}.{sheet_format}', sheet, label='comparison sheet')
  records_json = json.dumps([dataclasses.asdict(r) for r in found], indent=1)
  (out / 'results.json').write_text(records_json + '\n')
  (out / 'scores.md').write_text(score_tables(found, list(methods)))
  return found
