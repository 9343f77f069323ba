"""The two commands of the scripts, as testable library code: `stylize_files`
(`scripts/stylize.py`) and `style_grid_files` (`scripts/style_grid.py`), plus `port_weights`.

Several content images are stylized as vmapped batches: contents with the same size after fitting
to `config.image_size` (aspect ratio kept) run together, one batch per size. Every input, output
and setting is checked before the weights are loaded. A `--workdir` receives `config.json`,
`run.json` (inputs, outputs, devices, timings), `history.jsonl` (the losses) and `loss.png`.
Exit codes and one-line errors are `nst_jax.script`'s; file names are planned in `nst_jax.paths`.
"""

import os
import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import reporting, sheets
from nst_jax.app.session import Batch, Session
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


def _check_shapes(
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


def _check_outputs(
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
  workdir: str | None = None,
  batch_size: int = 0,
  dist: Distributed | None = None,
  reporter: reporting.ProgressReporter | None = None,
) -> list[pathlib.Path]:
  """Stylizes content image files with a blend of style image files: `scripts/stylize.py`.

  Contents of the same size after resizing run as one batch (at most `batch_size` contents, 0:
  no limit); each result is written as soon as its batch is done. With several processes, each
  loads only the contents of its share of each batch (`process_share`) and process 0 writes
  the results.

  Returns:
    The output paths, one per content image (see `paths.output_paths`).

  Raises:
    NSTError: a bad input, output or setting (one line).
    NonFiniteLossError: a loss went non-finite; the batch's last finite images were saved next to
      its outputs as `<output>.last_finite.png`.
    Interrupted: Ctrl-C; the batch's current images were saved as `<output>.interrupted.png`.
  """
  dist = dist or Distributed()
  if save_every < 0:
    raise ConfigError(f'--save_every={save_every} must be >= 0')
  if batch_size < 0:
    raise ConfigError(f'--batch_size={batch_size} must be >= 0')
  content_list = paths.content_paths(contents, content_dir)
  if not styles:
    raise ConfigError('no style image: give --style FILE[,FILE...]')
  blend = parse_style_weights(style_weights, len(styles))
  init_list = list(init_images or ())
  if init_list:
    if len(init_list) != len(content_list):
      raise ConfigError(
        f'--init_image has {len(init_list)} image(s) for {len(content_list)} content image(s); '
        'give one per content image'
      )
    config.init = 'image'
  elif config.init == 'image':
    raise ConfigError("config.init='image' needs --init_image FILE (one per content image)")
  outputs = paths.output_paths(output, content_list)
  points = schedule.save_points(config, save_every)
  planned = [*outputs, *(paths.sibling(p, f'step{s:04d}') for p in outputs for s in points)]
  _check_outputs(dist, outputs, planned, [*content_list, *styles, *init_list], workdir)
  # Resuming from `out.interrupted.png` may replace it (it is read first), not the other inputs.
  rescue = [
    paths.sibling(p, tag, '.png') for p in outputs for tag in ('interrupted', 'last_finite')
  ]
  paths.check_not_inputs(rescue, [*content_list, *styles])

  # Sizes come from the files' headers, so that a process decodes only its own contents.
  shapes = [image_shape(p, 'content image', config.image_size) for p in content_list]
  style_images = load_images(styles, 'style image', schedule.final_style_side(config))
  batches = group_by_size(shapes, batch_size)
  share = lambda pairs: process_share(len(pairs), dist).take(pairs)  # noqa: E731
  mine = sorted({i for _, pairs in batches for i in share(pairs)})
  loaded = load_images(content_list, 'content image', config.image_size, mine)
  _check_shapes(content_list, loaded, shapes)
  inits = load_images(init_list, 'init image', config.image_size, mine) if init_list else None
  logging.info(
    '%d content image(s) in %d batch(es), %d style image(s), %s steps at %d px',
    len(content_list),
    len(batches),
    len(styles),
    '+'.join(map(str, schedule.steps_per_scale(config))),
    config.image_size,
  )
  info = {
    'contents': content_list,
    'styles': list(styles),
    'style_weights': None if blend is None else blend.tolist(),
    'init_images': init_list,
    'outputs': [str(p) for p in outputs],
  }
  stems = [pathlib.Path(c).stem for c in content_list]
  session = Session(config, dist, batches, stems, workdir, info, reporter)

  def make_inputs(local: list[int]):
    stacked_inits = None if inits is None else np.stack([inits[i] for i in local])
    return np.stack([loaded[i] for i in local]), blend, stacked_inits

  points_set = set(points)

  def save_intermediate(progress: Progress) -> None:
    step = session.reporter.batch_step(progress)
    if step in points_set and dist.is_writer:
      pairs = session.batches[session.current][1]
      for i, image in zip(pairs, np.asarray(progress.images), strict=False):
        images.save_image(
          paths.sibling(outputs[i], f'step{step:04d}'), image, label='intermediate image'
        )
      session.reporter.close()  # The log line goes below the progress bar, not into it.
      logging.info('Saved intermediate image(s) at step %d', step)

  def save(tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    saved = [paths.sibling(outputs[i], tag, '.png') for i in results]
    # On Ctrl-C every process holds (and writes) its own pairs; otherwise process 0 writes all.
    if tag == 'interrupted' or dist.is_writer:
      for path, image in zip(saved, results.values(), strict=True):
        images.save_image(path, image, label=f'{tag.replace("_", " ")} image')
    return saved

  def resume_hint(pairs: list[int], saved: list[pathlib.Path]) -> str:
    hint = (
      f'; to resume, run again with --content {",".join(content_list[i] for i in pairs)} '
      f'--init_image {",".join(map(str, saved))} (and the same other flags)'
    )
    not_started = [content_list[i] for _, later in batches[session.current + 1 :] for i in later]
    return hint + (f'; not started: {",".join(not_started)}' if not_started else '')

  with session.rescue(save, resume_hint):
    for b, (_, pairs) in enumerate(batches):
      results = session.run(b, make_inputs, style_images, save_intermediate if points else None)
      if dist.is_writer:
        for i, image in zip(pairs, results, strict=True):
          images.save_image(outputs[i], image, label='output image')
          logging.info('Wrote %s (%dx%d)', outputs[i], image.shape[1], image.shape[0])
  session.finish('done')
  return outputs


def style_grid_files(
  config: ml_collections.ConfigDict,
  *,
  contents: Sequence[str],
  styles: Sequence[str],
  output: str,
  cell_size: int = 0,
  gutter: int = 8,
  workdir: str | None = None,
  batch_size: int = 0,
  dist: Distributed | None = None,
  reporter: reporting.ProgressReporter | None = None,
) -> pathlib.Path:
  """Stylizes every content with every style and composes a grid: `scripts/style_grid.py`.

  Pair (content i, style j) uses style j alone. Contents with the same size after resizing run as
  one batch of all their pairs (at most `batch_size` pairs, rounded down to whole contents; 0: no
  limit). The grid has a blank corner, the styles as column headers, the contents as row headers
  and the results as cells, each fitted without distortion into a cell of `cell_size` x
  `cell_size` pixels (0: the largest result's height and width), with `gutter` pixels of white
  between and around them (see `sheets.compose_grid`). Each result is also written as
  `grid_cells/<content>__<style>.png` next to the grid.

  Returns:
    The grid's path.

  Raises:
    As `stylize_files`; on Ctrl-C the partial grid is saved as `<grid>.interrupted.png`, on a
    non-finite loss the grid with the failed batch's last finite images as `<grid>.last_finite.png`.
  """
  dist = dist or Distributed()
  if not contents:
    raise ConfigError('no content image: give --contents FILE[,FILE...]')
  if not styles:
    raise ConfigError('no style image: give --styles FILE[,FILE...]')
  if cell_size < 0 or gutter < 0 or batch_size < 0:
    raise ConfigError(
      f'--cell_size={cell_size}, --gutter={gutter} and --batch_size={batch_size} must be >= 0'
    )
  if config.init == 'image':
    raise ConfigError("config.init='image' is not supported for grids; use another config.init")
  if paths.is_folder_name(output):
    raise ConfigError(f'--output {output!r}: give the grid image file name, e.g. grid.png')
  grid_path = pathlib.Path(output)
  cells = paths.grid_cell_paths(grid_path, contents, styles)
  planned = [
    grid_path,
    paths.sibling(grid_path, 'interrupted', '.png'),
    paths.sibling(grid_path, 'last_finite', '.png'),
    *(p for row in cells for p in row),
  ]
  _check_outputs(dist, [grid_path], planned, [*contents, *styles], workdir)

  num_styles = len(styles)
  shapes = [image_shape(p, 'content image', config.image_size) for p in contents]
  style_images = load_images(styles, 'style image', schedule.final_style_side(config))
  # Pair p is content p // num_styles with style p % num_styles.
  batches = [
    (shape, [i * num_styles + j for i in group for j in range(num_styles)])
    for shape, group in group_by_size(shapes, batch_size and max(1, batch_size // num_styles))
  ]
  mine = {
    p // num_styles for _, pairs in batches for p in process_share(len(pairs), dist).take(pairs)
  }
  # Process 0 draws the grid, so it reads every content (for the row headers).
  loaded = load_images(
    contents, 'content image', config.image_size, None if dist.is_writer else sorted(mine)
  )
  _check_shapes(contents, loaded, shapes)
  logging.info(
    '%d x %d grid: %d pair(s) in %d batch(es), %s steps at %d px',
    len(contents),
    num_styles,
    len(contents) * num_styles,
    len(batches),
    '+'.join(map(str, schedule.steps_per_scale(config))),
    config.image_size,
  )
  info = {'contents': list(contents), 'styles': list(styles), 'output': str(grid_path)}
  names = [f'{cell.stem}' for row in cells for cell in row]
  session = Session(config, dist, batches, names, workdir, info, reporter)
  one_hot = np.eye(num_styles, dtype=np.float32)
  results: list[np.ndarray | None] = [None] * (len(contents) * num_styles)

  def make_inputs(local: list[int]):
    contents_ = np.stack([loaded[p // num_styles] for p in local])
    return contents_, np.stack([one_hot[p % num_styles] for p in local]), None

  def write_grid(path: pathlib.Path, label: str) -> None:
    if not dist.is_writer:
      return
    done = [image for image in results if image is not None]
    size = (
      (cell_size, cell_size)
      if cell_size
      else (
        max((i.shape[0] for i in done), default=config.image_size),
        max((i.shape[1] for i in done), default=config.image_size),
      )
    )
    rows = [results[i * num_styles : (i + 1) * num_styles] for i in range(len(contents))]
    sheet = sheets.compose_grid(rows, loaded, style_images, size, gutter)
    images.save_image(path, sheet, label=label)
    logging.info('Wrote %s (%dx%d)', path, sheet.shape[1], sheet.shape[0])

  def save(tag: str, partial: dict[int, np.ndarray]) -> list[pathlib.Path]:
    for p, image in partial.items():
      results[p] = image
    path = paths.sibling(grid_path, tag, '.png')
    write_grid(path, f'{tag.replace("_", " ")} grid')
    return [path]

  with session.rescue(save):
    for b, (_, pairs) in enumerate(batches):
      for p, image in zip(pairs, session.run(b, make_inputs, style_images), strict=True):
        results[p] = image
        if dist.is_writer:
          images.save_image(cells[p // num_styles][p % num_styles], image, label='grid cell')
  write_grid(grid_path, 'output image')
  session.finish('done')
  return grid_path


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
