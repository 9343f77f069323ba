"""The scripts' commands, as testable library code: `StylizeCommand` (`scripts/stylize.py`) and
`GridCommand` (`scripts/style_grid.py`) on the shared protocol of `nst_jax.app.session`, plus
`port_weights`.

Several content images are stylized as vmapped batches: contents with the same size after fitting
to `config.image_size` (aspect ratio kept) run together, one batch per size. Every input, output
and setting is checked before the weights are loaded. A `--workdir` receives `config.json`,
`run.json` (inputs, outputs, devices, timings), `history.jsonl` (the losses) and `loss.png`,
TensorBoard summaries and checkpoints, from which a command run again resumes
(`nst_jax.app.workdir`).
Exit codes and one-line errors are `nst_jax.app.script`'s; file names are planned in
`nst_jax.io.paths`.
"""

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import reporting, session, sheets
from nst_jax.app.session import Batch
from nst_jax.app.workdir import Workdir
from nst_jax.core import losses, resample
from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import images, paths, weights
from nst_jax.run import schedule
from nst_jax.run.history import Progress
from nst_jax.run.pairs import Distributed, process_share


def parse_style_weights(values: Sequence[str] | None, num_styles: int) -> np.ndarray | None:
  """`--style_weights 0.7,0.3` as floats, one per style image; None if not given."""
  if not values:
    return None
  parsed = []
  for value in values:
    try:
      parsed.append(float(value))
    except ValueError:
      raise ConfigError(f'--style_weights: {value!r} is not a number') from None
  if len(parsed) != num_styles:
    raise ConfigError(
      f'--style_weights has {len(parsed)} value(s) but --style names {num_styles} style '
      f'image(s); give one weight per style image'
    )
  return losses.check_blend_weights(parsed, '--style_weights')


def load_images(
  files: Sequence[str], label: str, max_side: int | None, rows: Sequence[int] | None = None
) -> list[np.ndarray | None]:
  """Loads `files`, fitted to `max_side` (only the indices in `rows`, if given; others None)."""
  wanted = set(range(len(files)) if rows is None else rows)
  return [
    images.load_image(p, max_side=max_side, label=label) if i in wanted else None
    for i, p in enumerate(files)
  ]


def image_shape(path: str, label: str, max_side: int) -> tuple[int, int]:
  """(H, W) of the image at `path` once fitted to `max_side`, from the file's header."""
  return resample.fit_size(images.read_size(path, label=label), max_side)


def check_shapes(
  files: Sequence[str], loaded: Sequence[np.ndarray | None], shapes: Sequence[tuple[int, int]]
) -> None:
  for path, image, shape in zip(files, loaded, shapes, strict=True):
    if image is not None and image.shape[:2] != tuple(shape):
      raise ImageError(
        f'content image {path!r}: decoded as {image.shape[1]}x{image.shape[0]} pixels but its '
        f'header gives {shape[1]}x{shape[0]}'
      )


def group_by_size(shapes: Sequence[tuple[int, int]], batch_size: int = 0) -> list[Batch]:
  """Indices grouped by equal (H, W), in order of first appearance, at most `batch_size` each."""
  groups: dict[tuple[int, int], list[int]] = {}
  for i, shape in enumerate(shapes):
    groups.setdefault(tuple(shape), []).append(i)
  out = []
  for shape, indices in groups.items():
    step = batch_size or len(indices)
    out += [(shape, indices[i : i + step]) for i in range(0, len(indices), step)]
  return out


def check_outputs(
  dist: Distributed,
  outputs: Sequence[pathlib.Path],
  planned: Sequence[pathlib.Path],
  inputs: Sequence[str],
  workdir: str | None,
) -> None:
  paths.check_not_inputs(planned, inputs)
  if dist.is_writer:
    for path in outputs:
      images.check_writable(path, label='output image')
    if workdir:
      paths.check_folder_writable(workdir, '--workdir')


@dataclasses.dataclass
class StylizeCommand(session.Command):
  """`scripts/stylize.py`: content image files, each with the blend of the style image files.

  Contents of the same size after resizing run as one batch (at most `batch_size` contents, 0:
  no limit); each result is written as soon as its batch is done. With several processes, each
  loads only the contents of its share of each batch (`process_share`) and process 0 writes
  the results.
  """

  config: ml_collections.ConfigDict
  dist: Distributed
  contents: Sequence[str]
  content_dir: str | None
  style_files: Sequence[str]
  output: str
  style_weights: Sequence[str] | None
  init_images: Sequence[str]
  save_every: int
  workdir: str | None
  batch_size: int

  def plan(self) -> None:
    config, dist = self.config, self.dist
    if self.save_every < 0:
      raise ConfigError(f'--save_every={self.save_every} must be >= 0')
    if self.batch_size < 0:
      raise ConfigError(f'--batch_size={self.batch_size} must be >= 0')
    self.content_list = paths.content_paths(self.contents, self.content_dir)
    if not self.style_files:
      raise ConfigError('no style image: give --style FILE[,FILE...]')
    self.blend = parse_style_weights(self.style_weights, len(self.style_files))
    self.init_list = list(self.init_images or ())
    if self.init_list:
      if len(self.init_list) != len(self.content_list):
        raise ConfigError(
          f'--init_image has {len(self.init_list)} image(s) for {len(self.content_list)} '
          'content image(s); give one per content image'
        )
      config.init.kind = 'image'
    elif config.init.kind == 'image':
      raise ConfigError("config.init.kind='image' needs --init_image FILE (one per content image)")
    self.outputs = paths.output_paths(self.output, self.content_list)
    self.points = schedule.save_points(config, self.save_every)
    planned = [
      *self.outputs,
      *(paths.sibling(p, f'step{s:04d}') for p in self.outputs for s in self.points),
    ]
    inputs = [*self.content_list, *self.style_files, *self.init_list]
    check_outputs(dist, self.outputs, planned, inputs, self.workdir)
    # Resuming from `out.interrupted.png` may replace it (it is read first), not the other inputs.
    rescue = [
      paths.sibling(p, tag, '.png') for p in self.outputs for tag in ('interrupted', 'last_finite')
    ]
    paths.check_not_inputs(rescue, [*self.content_list, *self.style_files])

    # Sizes come from the files' headers, so that a process decodes only its own contents.
    shapes = [image_shape(p, 'content image', config.image_size) for p in self.content_list]
    self.styles = load_images(self.style_files, 'style image', schedule.final_style_side(config))
    self.batches = group_by_size(shapes, self.batch_size)
    share = lambda pairs: process_share(len(pairs), dist).take(pairs)  # noqa: E731
    mine = sorted({i for _, pairs in self.batches for i in share(pairs)})
    self.loaded = load_images(self.content_list, 'content image', config.image_size, mine)
    check_shapes(self.content_list, self.loaded, shapes)
    self.inits = None
    if self.init_list:
      self.inits = load_images(self.init_list, 'init image', config.image_size, mine)
    logging.info(
      '%d content image(s) in %d batch(es), %d style image(s), %s steps at %d px',
      len(self.content_list),
      len(self.batches),
      len(self.style_files),
      '+'.join(map(str, schedule.steps_per_scale(config))),
      config.image_size,
    )
    self.info = {
      'contents': self.content_list,
      'styles': list(self.style_files),
      'style_weights': None if self.blend is None else self.blend.tolist(),
      'init_images': self.init_list,
      'outputs': [str(p) for p in self.outputs],
    }
    self.names = [pathlib.Path(c).stem for c in self.content_list]

  def inputs(self, pairs: list[int]) -> session.BatchInputs:
    inits = None if self.inits is None else np.stack([self.inits[i] for i in pairs])
    return session.BatchInputs(np.stack([self.loaded[i] for i in pairs]), self.blend, inits)

  def on_progress(self, progress: Progress) -> None:
    step = self.session.reporter.batch_step(progress)
    if step not in self.points or not self.dist.is_writer:
      return
    pairs = self.session.batches[self.session.current][1]
    for i, image in zip(pairs, np.asarray(progress.images), strict=False):
      path = paths.sibling(self.outputs[i], f'step{step:04d}')
      images.save_image(path, image, label='intermediate image')
    self.session.reporter.close()  # The log line goes below the progress bar, not into it.
    logging.info('Saved intermediate image(s) at step %d', step)

  def save(self, pairs: list[int], results: np.ndarray) -> None:
    if not self.dist.is_writer:
      return
    for i, image in zip(pairs, results, strict=True):
      images.save_image(self.outputs[i], image, label='output image')
      logging.info('Wrote %s (%dx%d)', self.outputs[i], image.shape[1], image.shape[0])

  def rescue(self, tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    saved = [paths.sibling(self.outputs[i], tag, '.png') for i in results]
    # On Ctrl-C every process holds (and writes) its own pairs; otherwise process 0 writes all.
    if tag == 'interrupted' or self.dist.is_writer:
      for path, image in zip(saved, results.values(), strict=True):
        images.save_image(path, image, label=f'{tag.replace("_", " ")} image')
    return saved

  def resume_hint(self, pairs: list[int], saved: list[pathlib.Path]) -> str:
    hint = (
      f'; to resume, run again with --content {",".join(self.content_list[i] for i in pairs)} '
      f'--init_image {",".join(map(str, saved))} (and the same other flags)'
    )
    later = self.batches[self.session.current + 1 :]
    not_started = [self.content_list[i] for _, pairs_ in later for i in pairs_]
    return hint + (f'; not started: {",".join(not_started)}' if not_started else '')

  def finish(self) -> list[pathlib.Path]:
    return self.outputs


def stylize_files(
  config: ml_collections.ConfigDict,
  *,
  contents: Sequence[str] = (),
  content_dir: str | None = None,
  styles: Sequence[str],
  output: str,
  style_weights: Sequence[str] | None = None,
  init_images: Sequence[str] = (),
  save_every: int = 0,
  workdir: str | Workdir | None = None,
  batch_size: int = 0,
  dist: Distributed | None = None,
  reporter: reporting.ProgressReporter | None = None,
) -> list[pathlib.Path]:
  """Stylizes content image files with a blend of style image files: `scripts/stylize.py`
  (see `StylizeCommand`).

  Returns:
    The output paths, one per content image (see `paths.output_paths`).

  Raises:
    NSTError: a bad input, output or setting (one line).
    NonFiniteLossError: a loss went non-finite; the batch's last finite images were saved next to
      its outputs as `<output>.last_finite.png`.
    Interrupted: Ctrl-C; the batch's current images were saved as `<output>.interrupted.png`.
  """
  dist = dist or Distributed()
  command = StylizeCommand(
    config,
    dist,
    contents,
    content_dir,
    styles,
    output,
    style_weights,
    init_images,
    save_every,
    _path(workdir),
    batch_size,
  )
  return session.run_command(command, config, dist, workdir, reporter)


@dataclasses.dataclass
class GridCommand(session.Command):
  """`scripts/style_grid.py`: every content with every style, composed into a grid.

  Pair (content i, style j) uses style j alone. Contents with the same size after resizing run as
  one batch of all their pairs (at most `batch_size` pairs, rounded down to whole contents; 0: no
  limit). The grid has a blank corner, the styles as column headers, the contents as row headers
  and the results as cells, each fitted without distortion into a cell of `cell_size` x
  `cell_size` pixels (0: the largest result's height and width), with `gutter` pixels of white
  between and around them (see `sheets.compose_grid`). Each result is also written as
  `grid_cells/<content>__<style>.png` next to the grid.
  """

  config: ml_collections.ConfigDict
  dist: Distributed
  contents: Sequence[str]
  style_files: Sequence[str]
  output: str
  cell_size: int
  gutter: int
  workdir: str | None
  batch_size: int

  def plan(self) -> None:
    config, dist = self.config, self.dist
    if not self.contents:
      raise ConfigError('no content image: give --contents FILE[,FILE...]')
    if not self.style_files:
      raise ConfigError('no style image: give --styles FILE[,FILE...]')
    if self.cell_size < 0 or self.gutter < 0 or self.batch_size < 0:
      raise ConfigError(
        f'--cell_size={self.cell_size}, --gutter={self.gutter} and '
        f'--batch_size={self.batch_size} must be >= 0'
      )
    if config.init.kind == 'image':
      raise ConfigError("config.init.kind='image' is not supported for grids; use another kind")
    if paths.is_folder_name(self.output):
      raise ConfigError(f'--output {self.output!r}: give the grid image file name, e.g. grid.png')
    self.grid_path = pathlib.Path(self.output)
    self.cells = paths.grid_cell_paths(self.grid_path, self.contents, self.style_files)
    planned = [
      self.grid_path,
      paths.sibling(self.grid_path, 'interrupted', '.png'),
      paths.sibling(self.grid_path, 'last_finite', '.png'),
      *(p for row in self.cells for p in row),
    ]
    inputs = [*self.contents, *self.style_files]
    check_outputs(dist, [self.grid_path], planned, inputs, self.workdir)

    count = len(self.style_files)
    shapes = [image_shape(p, 'content image', config.image_size) for p in self.contents]
    self.styles = load_images(self.style_files, 'style image', schedule.final_style_side(config))
    # Pair p is content p // count with style p % count.
    self.batches = [
      (shape, [i * count + j for i in group for j in range(count)])
      for shape, group in group_by_size(
        shapes, self.batch_size and max(1, self.batch_size // count)
      )
    ]
    mine = {
      p // count for _, pairs in self.batches for p in process_share(len(pairs), dist).take(pairs)
    }
    # Process 0 draws the grid, so it reads every content (for the row headers).
    rows = None if dist.is_writer else sorted(mine)
    self.loaded = load_images(self.contents, 'content image', config.image_size, rows)
    check_shapes(self.contents, self.loaded, shapes)
    logging.info(
      '%d x %d grid: %d pair(s) in %d batch(es), %s steps at %d px',
      len(self.contents),
      count,
      len(self.contents) * count,
      len(self.batches),
      '+'.join(map(str, schedule.steps_per_scale(config))),
      config.image_size,
    )
    self.info = {
      'contents': list(self.contents),
      'styles': list(self.style_files),
      'output': str(self.grid_path),
    }
    self.names = [cell.stem for row in self.cells for cell in row]
    self.results: list[np.ndarray | None] = [None] * (len(self.contents) * count)

  def inputs(self, pairs: list[int]) -> session.BatchInputs:
    count = len(self.style_files)
    one_hot = np.eye(count, dtype=np.float32)
    contents = np.stack([self.loaded[p // count] for p in pairs])
    return session.BatchInputs(contents, np.stack([one_hot[p % count] for p in pairs]))

  def save(self, pairs: list[int], results: np.ndarray) -> None:
    count = len(self.style_files)
    for p, image in zip(pairs, results, strict=True):
      self.results[p] = image
      if self.dist.is_writer:
        images.save_image(self.cells[p // count][p % count], image, label='grid cell')

  def rescue(self, tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    for p, image in results.items():
      self.results[p] = image
    path = paths.sibling(self.grid_path, tag, '.png')
    self._write_grid(path, f'{tag.replace("_", " ")} grid')
    return [path]

  def finish(self) -> pathlib.Path:
    self._write_grid(self.grid_path, 'output image')
    return self.grid_path

  def _write_grid(self, path: pathlib.Path, label: str) -> None:
    if not self.dist.is_writer:
      return
    count = len(self.style_files)
    done = [image for image in self.results if image is not None]
    size = (self.cell_size, self.cell_size)
    if not self.cell_size:
      size = (
        max((i.shape[0] for i in done), default=self.config.image_size),
        max((i.shape[1] for i in done), default=self.config.image_size),
      )
    rows = [self.results[i * count : (i + 1) * count] for i in range(len(self.contents))]
    sheet = sheets.compose_grid(rows, self.loaded, self.styles, size, self.gutter)
    images.save_image(path, sheet, label=label)
    logging.info('Wrote %s (%dx%d)', path, sheet.shape[1], sheet.shape[0])


def style_grid_files(
  config: ml_collections.ConfigDict,
  *,
  contents: Sequence[str],
  styles: Sequence[str],
  output: str,
  cell_size: int = 0,
  gutter: int = 8,
  workdir: str | Workdir | None = None,
  batch_size: int = 0,
  dist: Distributed | None = None,
  reporter: reporting.ProgressReporter | None = None,
) -> pathlib.Path:
  """Stylizes every content with every style and composes a grid: `scripts/style_grid.py` (see
  `GridCommand`).

  Returns:
    The grid's path.

  Raises:
    As `stylize_files`; on Ctrl-C the partial grid is saved as `<grid>.interrupted.png`, on a
    non-finite loss the grid with the failed batch's last finite images as `<grid>.last_finite.png`.
  """
  dist = dist or Distributed()
  command = GridCommand(
    config, dist, contents, styles, output, cell_size, gutter, _path(workdir), batch_size
  )
  return session.run_command(command, config, dist, workdir, reporter)


def _path(workdir: str | Workdir | None) -> str | None:
  return workdir.path if isinstance(workdir, Workdir) else workdir


def port_weights(
  source: str, path: str | None = None, cache_dir: str | None = None
) -> pathlib.Path:
  """Converts `source` weights (from `path`, or fetched) into the verified .npz cache."""
  if path is not None and not os.path.isfile(path):
    raise ConfigError(f'--path {path!r}: file not found')
  if cache_dir:
    paths.check_folder_writable(cache_dir, '--cache_dir')
  weights.load_vgg19_params(source, path, cache_directory=cache_dir)
  return weights.cache_path(source, cache_dir)
