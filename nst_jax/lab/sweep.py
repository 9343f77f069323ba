"""Sweeps of one or two config fields over one (content, style) pair: `scripts/sweep.py`.

Each cell of the sweep is the base config with one value of each swept field. Term weights are
arguments of the compiled program, and `stylize(..., pair_weights=...)` gives each pair of a batch
its own, so cells that differ only in loss weights (`losses.<name>.weight`) run as ONE batch,
compiled once. Cells that differ in anything else (layers, optimizer, sizes, steps...) need
programs of their own: they run as separate batches, and the tool says so. Every cell is a pair
of the run, with the command protocol's record, TensorBoard summaries and checkpoints in
`--workdir` (`nst_jax.app.session`).

Writes the grid (`--output`, columns: the first field's values, rows: the second's, each header
naming its field and value), each cell's image (`<grid>_cells/<label>.png`) and the table of the
final terms as markdown and JSON (`<grid>.md`, `<grid>.json`).
"""

import copy
import dataclasses
import json
import pathlib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import cli, session, sheets
from nst_jax.app.workdir import Workdir
from nst_jax.core.terms import terms_from_config
from nst_jax.errors import ConfigError
from nst_jax.io import files, images, paths
from nst_jax.run import config as config_lib
from nst_jax.run import schedule
from nst_jax.run.pairs import Distributed
from nst_jax.run.resume import flat_config

_WEIGHT = re.compile(r'^losses\.(\w+)\.weight$')


class Axis(NamedTuple):
  """One swept field: its dotted name, its values (typed as the field), and as given."""

  field: str
  values: tuple[Any, ...]
  texts: tuple[str, ...]


class Cell(NamedTuple):
  """One point of the sweep: its column and row, label and config."""

  column: int
  row: int
  label: str
  config: ml_collections.ConfigDict


def parse_axis(spec: str, config: ml_collections.ConfigDict) -> Axis:
  """`'losses.gram.weight=1e3,1e4'` as an `Axis`, each value read as the field's type.

  Raises:
    ConfigError: not FIELD=V1,V2,..., an unknown field, a bad or repeated value.
  """
  field, sep, values = spec.partition('=')
  field = field.strip()
  texts = tuple(v.strip() for v in values.split(','))
  if not sep or not field or not all(texts):
    raise ConfigError(f'--sweep {spec!r} is not FIELD=VALUE,VALUE,...')
  parsed = []
  for text in texts:
    probe = copy.deepcopy(config)
    try:
      config_lib.apply_override(probe, f'{field}={text}')
    except ConfigError as e:
      raise ConfigError(f'--sweep {spec!r}: {e}') from None
    parsed.append(_get(probe, field))
  if len({json.dumps(v, sort_keys=True, default=str) for v in parsed}) < len(parsed):
    raise ConfigError(f'--sweep {spec!r} repeats a value')
  return Axis(field, tuple(parsed), texts)


def _get(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for part in field.split('.'):
    node = node[part]
  return node


def short_name(field: str) -> str:
  """The field without its `losses.` prefix: `gram.weight`."""
  return field.removeprefix('losses.')


def plan_cells(config: ml_collections.ConfigDict, axes: Sequence[Axis]) -> list[Cell]:
  """Every combination of the axes' values, row by row (the second axis's values are rows)."""
  if not 1 <= len(axes) <= 2:
    raise ConfigError(f'give one or two --sweep fields, got {len(axes)}')
  if len(axes) == 2 and axes[0].field == axes[1].field:
    raise ConfigError(f'--sweep names {axes[0].field} twice')
  rows = axes[1] if len(axes) == 2 else Axis('', (None,), ('',))
  cells = []
  for r, row_text in enumerate(rows.texts):
    for c, column_text in enumerate(axes[0].texts):
      cell_config = copy.deepcopy(config)
      parts = [(axes[0].field, column_text)] + ([(rows.field, row_text)] if rows.field else [])
      for field, text in parts:
        config_lib.apply_override(cell_config, f'{field}={text}')
      label = '__'.join(f'{short_name(f)}={t}' for f, t in parts)
      try:
        config_lib.validate(cell_config)
      except ConfigError as e:
        raise ConfigError(f'sweep cell {label}: {e}') from None
      cells.append(Cell(c, r, label, cell_config))
  return cells


class Group(NamedTuple):
  """Cells that run as one batch: one config (the program), each cell's term weights."""

  cells: list[int]
  config: ml_collections.ConfigDict
  weights: dict[str, np.ndarray]


def program_groups(cells: Sequence[Cell], axes: Sequence[Axis]) -> list[Group]:
  """The cells grouped by compiled program: equal configs once the swept loss weights are set
  aside. Each group's config gives every swept loss its largest weight in the group (so that the
  term is built); `weights` holds each cell's weight of those losses."""
  swept = [m.group(1) for a in axes if (m := _WEIGHT.match(a.field))]
  groups: dict[str, list[int]] = {}
  for i, cell in enumerate(cells):
    key = flat_config(cell.config)
    for name in swept:
      key.pop(f'losses.{name}.weight')
    groups.setdefault(json.dumps(key, sort_keys=True), []).append(i)
  out = []
  for members in groups.values():
    config = copy.deepcopy(cells[members[0]].config)
    weights = {}
    for name in swept:
      w = [cells[i].config.losses[name].weight for i in members]
      config.losses[name].weight = max(w)
      if max(w) > 0:
        weights[name] = np.asarray(w, np.float32)
    out.append(Group(members, config, weights))
  return out


@dataclasses.dataclass
class SweepCommand(session.Command):
  """`scripts/sweep.py`: one (content, style) pair under every cell of a sweep; see the module."""

  config: ml_collections.ConfigDict
  dist: Distributed
  content: str
  style: str
  sweeps: Sequence[str]
  output: str
  cell_size: int
  workdir: str | None

  def plan(self) -> None:
    if not self.sweeps:
      raise ConfigError("no --sweep: give one or two, e.g. --sweep 'losses.gram.weight=1e-4,1e-3'")
    if paths.is_folder_name(self.output):
      raise ConfigError(f'--output {self.output!r}: give the grid image file name, e.g. sweep.png')
    if self.cell_size < 0:
      raise ConfigError(f'--cell_size={self.cell_size} must be >= 0')
    self.axes = [parse_axis(spec, self.config) for spec in self.sweeps]
    self.cells = plan_cells(self.config, self.axes)
    self.groups = program_groups(self.cells, self.axes)
    self.grid_path = pathlib.Path(self.output)
    folder = self.grid_path.with_name(self.grid_path.stem + '_cells')
    self.cell_paths = [folder / f'{cell.label}.png' for cell in self.cells]
    self.tables = [self.grid_path.with_suffix('.md'), self.grid_path.with_suffix('.json')]
    planned = [self.grid_path, *self.cell_paths, *self.tables]
    planned += [paths.sibling(self.grid_path, t, '.png') for t in ('interrupted', 'last_finite')]
    inputs = [self.content, self.style]
    cli.check_outputs(self.dist, [self.grid_path], planned, inputs, self.workdir)
    largest = max(self.groups, key=lambda g: g.config.image_size).config
    self.loaded = images.load_image(self.content, max_side=largest.image_size, label='content')
    side = max(schedule.final_style_side(g.config) for g in self.groups)
    self.styles = [images.load_image(self.style, max_side=side, label='style image')]
    self.batches = [
      (cli.image_shape(self.content, 'content image', g.config.image_size), g.cells)
      for g in self.groups
    ]
    self.group_of = {i: g for g in self.groups for i in g.cells}
    for axis in self.axes:
      if _WEIGHT.match(axis.field):
        logging.info('%s: a term weight, varied per pair inside a batch', axis.field)
      else:
        logging.info('%s changes the compiled program: one batch per value', axis.field)
    logging.info(
      '%d cell(s) in %d batch(es), one compiled program each', len(self.cells), len(self.groups)
    )
    self.names = [cell.label for cell in self.cells]
    self.info = {
      'content': self.content,
      'style': self.style,
      'sweeps': list(self.sweeps),
      'programs': len(self.groups),
      'output': str(self.grid_path),
    }
    self.results: list[np.ndarray | None] = [None] * len(self.cells)
    self.finals: dict[int, dict[str, Any]] = {}

  def inputs(self, pairs: list[int]) -> session.BatchInputs:
    group = self.group_of[pairs[0]]
    where = [group.cells.index(p) for p in pairs]
    contents = np.stack([self.loaded] * len(pairs))
    weights = {name: w[where] for name, w in group.weights.items()}
    return session.BatchInputs(
      contents,
      terms=terms_from_config(group.config),
      pair_weights=weights or None,
      config=group.config,
    )

  def save(self, pairs: list[int], results: np.ndarray) -> None:
    history = self.session.records[self.session.current].history
    for k, (p, image) in enumerate(zip(pairs, results, strict=True)):
      self.results[p] = image
      self.finals[p] = {
        'total': float(history.term_totals[-1][k]),
        'terms': {name: float(v[-1][k]) for name, v in history.terms.items()},
      }
      if self.dist.is_writer:
        images.save_image(self.cell_paths[p], image, label='sweep cell')

  def rescue(self, tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    for p, image in results.items():
      self.results[p] = image
    path = paths.sibling(self.grid_path, tag, '.png')
    self._write_grid(path)
    return [path]

  def finish(self) -> pathlib.Path:
    self._write_grid(self.grid_path)
    if self.dist.is_writer:
      rows = self.table()
      texts = (markdown_table(rows, self.axes), json.dumps(rows, indent=2) + '\n')
      for path, text in zip(self.tables, texts, strict=True):
        files.atomic_write(path, lambda f, text=text: f.write(text.encode()))
      logging.info('Wrote %s and %s', *self.tables)
    return self.grid_path

  def table(self) -> list[dict[str, Any]]:
    """One row per cell: its fields' values, batch, image, final objective and terms."""
    rows = []
    for i, cell in enumerate(self.cells):
      values = [cell.column] + ([cell.row] if len(self.axes) == 2 else [])
      fields = {a.field: a.values[v] for a, v in zip(self.axes, values, strict=True)}
      rows.append(
        {
          'cell': cell.label,
          'fields': fields,
          'batch': self.groups.index(self.group_of[i]),
          'image': str(self.cell_paths[i]),
          **self.finals.get(i, {'total': None, 'terms': {}}),
        }
      )
    return rows

  def _write_grid(self, path: pathlib.Path) -> None:
    if not self.dist.is_writer:
      return
    images.save_image(path, self.grid(), label='sweep grid')
    logging.info('Wrote %s', path)

  def grid(self) -> np.ndarray:
    """The grid: the first field's values as columns, the second's as rows (blank: not run)."""
    done = [im for im in self.results if im is not None]
    side = self.cell_size or max([*(max(im.shape[:2]) for im in done), 64])
    size = (side, side)
    font = max(10, side // 9)
    columns = [
      sheets.text_image(f'{short_name(self.axes[0].field)}={t}', size, font)
      for t in self.axes[0].texts
    ]
    row_texts = self.axes[1].texts if len(self.axes) == 2 else ('',)
    rows = [
      sheets.text_image(f'{short_name(self.axes[1].field)}={t}' if t else '', size, font)
      for t in row_texts
    ]
    cells = [[None] * len(columns) for _ in rows]
    for cell, image in zip(self.cells, self.results, strict=True):
      cells[cell.row][cell.column] = image
    return sheets.compose_grid(cells, rows, columns, size)


def markdown_table(rows: Sequence[dict[str, Any]], axes: Sequence[Axis]) -> str:
  """The sweep's final terms (unweighted) and objective, one line per cell."""
  terms = sorted({name for row in rows for name in row['terms']})
  head = [a.field for a in axes] + ['batch', 'total'] + terms
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]

  def number(value: Any) -> str:
    return '' if value is None else f'{value:.4g}'

  for row in rows:
    cells = [str(row['fields'][a.field]) for a in axes] + [str(row['batch']), number(row['total'])]
    cells += [number(row['terms'].get(name)) for name in terms]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def sweep_files(
  config: ml_collections.ConfigDict,
  *,
  content: str,
  style: str,
  sweeps: Sequence[str],
  output: str,
  cell_size: int = 0,
  workdir: str | Workdir | None = None,
  dist: Distributed | None = None,
) -> pathlib.Path:
  """Runs a sweep (see `SweepCommand` and the module docstring); returns the grid's path."""
  dist = dist or Distributed()
  path = workdir.path if isinstance(workdir, Workdir) else workdir
  command = SweepCommand(config, dist, content, style, list(sweeps), output, cell_size, path)
  return session.run_command(command, config, dist, workdir)
