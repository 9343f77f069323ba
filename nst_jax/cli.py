"""What the command-line scripts in `scripts/` do, as testable library code.

The scripts are thin: they define flags, then call one function here (`stylize_files`,
`style_grid_files`, `port_weights`) inside `run`, which turns every user mistake into one line on
stderr and an exit code:

  * 0: done;
  * 1: the run failed: a loss became non-finite (the last finite images are saved);
  * 2: a bad flag, config or input (`error: <message>`, no traceback), checked before the weights
    are loaded or anything is compiled;
  * 130: interrupted with Ctrl-C (the current images are saved, with how to resume).

Files written next to an output `out.png`: `out.step0050.png` (intermediate images, `--save_every`),
`out.interrupted.png` (Ctrl-C) and `out.last_finite.png` (non-finite loss). A `--workdir` receives
`config.json`, `run.json` (inputs, outputs, devices, timings), `history.jsonl` (the losses) and
`loss.png` (their curves).

Several content images are stylized as vmapped batches: contents with the same size after resizing
to `config.image_size` (aspect ratio kept) run together, one batch per size.
"""

import collections
import dataclasses
import functools
import math
import os
import pathlib
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags
from PIL import Image

from nst_jax import config as config_lib
from nst_jax import engine, grid, images, records, reporting, weights
from nst_jax.errors import (
  ConfigError,
  ImageError,
  NonFiniteLossError,
  NSTError,
  StylizeInterrupted,
)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Extensions of the files `--content_dir` picks up.
IMAGE_EXTENSIONS = (*images.SAVE_FORMATS, '.gif')


class Interrupted(KeyboardInterrupt):
  """Ctrl-C, after the current images were saved; the message says where and how to resume."""


# ---------------------------------------------------------------------------------------------
# Running a script: flags, config, exit codes.


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def _exit(prefix: str, message: str, code: int) -> None:
  sys.stdout.flush()
  print(f'{prefix}: {_one_line(message)}', file=sys.stderr, flush=True)
  sys.exit(code)


def run(main: Callable[[list[str]], None]) -> None:
  """`absl.app.run(main)` with one-line errors: see the module docstring for the exit codes."""
  app.run(functools.partial(_call_main, main), flags_parser=parse_flags)


def _call_main(main: Callable[[list[str]], None], argv: list[str]) -> None:
  try:
    main(argv)
  except NonFiniteLossError as e:
    _exit('error', str(e), EXIT_FAILED)
  except NSTError as e:
    _exit('error', str(e), EXIT_USAGE)
  except Interrupted as e:
    _exit('interrupted', str(e), EXIT_INTERRUPTED)
  except KeyboardInterrupt:
    _exit('interrupted', 'stopped; there was no image in progress to save', EXIT_INTERRUPTED)


def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags like absl does, but a bad flag or config override is one `error:` line, exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _exit('error', _flag_error_message(str(e)), EXIT_USAGE)
  except (AttributeError, KeyError) as e:  # An unknown --config.field, with an explicit --config.
    _exit('error', _unknown_field_message(e, argv), EXIT_USAGE)
  except Exception as e:  # Only a config file runs user code here: e.g. a SyntaxError in it.
    _exit('error', f'loading the config file: {type(e).__name__}: {e}', EXIT_USAGE)
  return []  # Not reached.


def _flag_error_message(text: str) -> str:
  required = re.search(r'Flag --(\w+) must have a value other than None', text)
  if required:
    return f'--{required.group(1)} is required'
  if 'Traceback (most recent call last)' in text:  # A config file failed to load.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f'{lines[0].rstrip(":")} {lines[-1]}'
  return text


def _unknown_field_message(exc: BaseException, argv: Sequence[str], name: str = 'config') -> str:
  """'--config.num_step: the config has no field 'num_step' (did you mean 'num_steps'?)'."""
  text = str(exc.args[0]) if exc.args else str(exc)
  while text[:1] in '"\'' and text[:1] == text[-1:] and len(text) > 1:  # KeyError's repr quoting.
    text = text[1:-1]
  lines = [line.strip() for line in text.replace('\\n', '\n').splitlines() if line.strip()]
  field = lines[0].strip('\'"\\') if lines else '?'
  overrides = [a.split('=', 1)[0].lstrip('-') for a in argv if re.match(rf'-{{1,2}}{name}\.', a)]
  matching = [o for o in overrides if field in o.split('.')[1:]]
  where = f'--{matching[0]}' if matching else f'--{name}.{field}'
  hint = ''
  suggestion = re.search(r'Did you mean "([^"]+)"', text)
  if suggestion:
    hint = f' (did you mean {suggestion.group(1)!r}?)'
  return f'{where}: the config has no field {field!r}{hint}'


def check_no_arguments(argv: Sequence[str]) -> None:
  """Refuses positional arguments (absl passes them through): they are always a mistake here."""
  if len(argv) > 1:
    raise ConfigError(
      f'unexpected argument(s) {" ".join(argv[1:])!r}; flags are written --name=value'
    )


def config_flag(default: str | os.PathLike, name: str = 'config') -> flags.FlagHolder:
  """`DEFINE_config_file(name, default, lock_config=True)`; bad overrides are one line, exit 2.

  `--config.field=value` overrides any field; unknown fields and values of the wrong type are
  refused. ml_collections applies the overrides of the default config while the flag is
  defined, so their errors are caught here.
  """
  try:
    return config_flags.DEFINE_config_file(
      name, os.fspath(default), 'Config file (a Python file with get_config()).', lock_config=True
    )
  except (AttributeError, KeyError) as e:
    _exit('error', _unknown_field_message(e, sys.argv, name), EXIT_USAGE)
  except flags.Error as e:
    _exit('error', _flag_error_message(str(e)), EXIT_USAGE)
  except Exception as e:  # The default config file's own code failed.
    _exit('error', f'loading the config file: {type(e).__name__}: {e}', EXIT_USAGE)
  raise AssertionError('not reached')


def get_config(holder: flags.FlagHolder) -> ml_collections.ConfigDict:
  """The parsed config; raises `ConfigError` if the file failed to load or a value is invalid."""
  filename = config_flags.get_config_filename(flags.FLAGS[holder.name])
  config = holder.value
  try:
    config.keys()
  except OSError as e:  # ml_collections' placeholder for a config file that failed to load.
    if not os.path.isfile(filename.split(':', 1)[0]):
      raise ConfigError(f'config file {filename!r}: file not found') from None
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    raise ConfigError(f'config file {filename!r}: {lines[-1]}') from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f'config file {filename!r}: get_config() returned a {type(config).__name__}, not a ConfigDict'
    )
  check_config_fields(config, filename)
  config_lib.validate(config)
  return config


def check_config_fields(config: ml_collections.ConfigDict, filename: str = 'config') -> None:
  """Raises `ConfigError` if `config` lacks or adds top-level fields of `default_config()`."""
  expected = set(config_lib.default_config().keys())
  keys = set(config.keys())
  if keys - expected:
    raise ConfigError(
      f'config file {filename!r} sets unknown field(s) {", ".join(sorted(keys - expected))}; '
      'valid fields are those of nst_jax.config.default_config()'
    )
  if expected - keys:
    raise ConfigError(
      f'config file {filename!r} lacks field(s) {", ".join(sorted(expected - keys))}; start '
      'from nst_jax.config.default_config() and change only what differs'
    )


# ---------------------------------------------------------------------------------------------
# Devices and several hosts.


@dataclasses.dataclass(frozen=True)
class Distributed:
  """Where this process stands: `process_index` of `process_count` (1 without --multihost)."""

  process_index: int = 0
  process_count: int = 1

  @property
  def is_writer(self) -> bool:
    return self.process_index == 0


def define_multihost_flags() -> None:
  """--multihost / --nomultihost and the explicit `jax.distributed.initialize` arguments."""
  flags.DEFINE_boolean(
    'multihost',
    None,
    'Run as one of several processes (jax.distributed); default: when SLURM (srun) or Open MPI '
    'launched several tasks, or the addresses below are given. --nomultihost never.',
  )
  flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (jax.distributed).')
  flags.DEFINE_integer('num_processes', None, 'Number of processes (jax.distributed).')
  flags.DEFINE_integer('process_id', None, 'Index of this process (jax.distributed).')


def multihost_flag_values() -> dict[str, Any]:
  """The flags of `define_multihost_flags`, as keyword arguments of `setup_devices`."""
  names = ('multihost', 'coordinator_address', 'num_processes', 'process_id')
  return {name: flags.FLAGS[name].value for name in names}


def cluster_detected(environ: Mapping[str, str] | None = None) -> bool:
  """Whether this process is one task of several launched by SLURM (srun) or Open MPI (mpirun)."""
  environ = os.environ if environ is None else environ

  def count(*names: str) -> int:
    for name in names:
      value = environ.get(name, '').strip()
      if value.isdigit():
        return int(value)
    return 1

  slurm = 'SLURM_JOB_ID' in environ and count('SLURM_STEP_NUM_TASKS', 'SLURM_NTASKS') > 1
  return slurm or count('OMPI_COMM_WORLD_SIZE') > 1


def setup_devices(
  *,
  multihost: bool | None = None,
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> Distributed:
  """Starts `jax.distributed` when asked or when a cluster is detected, and logs the devices.

  Args:
    multihost: True to initialise `jax.distributed` (addresses auto-detected unless given),
      False never to, None to do so when `cluster_detected()` or the addresses are given.
    coordinator_address, num_processes, process_id: passed to `jax.distributed.initialize`.
  """
  explicit = [coordinator_address, num_processes, process_id]
  if multihost is False and any(v is not None for v in explicit):
    raise ConfigError(
      '--nomultihost contradicts --coordinator_address/--num_processes/--process_id'
    )
  if multihost is None:
    multihost = any(v is not None for v in explicit) or cluster_detected()
  if multihost:
    logging.info(
      'Initialising jax.distributed (%s)',
      'explicit' if any(v is not None for v in explicit) else 'auto-detected',
    )
    # CPU-only processes (tests, clusters without accelerators) need a collectives backend.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    try:
      jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
      )
    except (RuntimeError, ValueError) as e:
      raise ConfigError(f'--multihost: jax.distributed.initialize failed: {e}') from None
  devices = jax.devices()
  kinds = collections.Counter(f'{d.platform}:{d.device_kind}' for d in devices)
  logging.info(
    'JAX %s, process %d of %d; %d device(s) (%d local): %s',
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    len(devices),
    jax.local_device_count(),
    ', '.join(f'{n} x {kind}' for kind, n in kinds.items()),
  )
  return Distributed(jax.process_index(), jax.process_count())


def process_share(num_pairs: int, dist: Distributed) -> tuple[range, bool]:
  """The pairs of a batch that this process loads and passes to the engine.

  The engine takes each process's own pairs and orders them process by process (and gives every
  process all results back), so each process takes a contiguous block: the first processes
  `ceil(num_pairs / process_count)` pairs each. A process left without pairs (fewer pairs than
  processes) repeats the batch's last pair, whose duplicate result comes after the real ones.

  Returns:
    (pairs, duplicate): the indices into the batch, and whether they are such a duplicate.
  """
  per_process = math.ceil(num_pairs / dist.process_count)
  start = min(num_pairs, dist.process_index * per_process)
  stop = min(num_pairs, start + per_process)
  if start == stop:
    return range(num_pairs - 1, num_pairs), True
  return range(start, stop), False


# ---------------------------------------------------------------------------------------------
# Inputs and outputs.


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
  weights_ = np.asarray(parsed)
  if not np.isfinite(weights_).all() or (weights_ < 0).any() or weights_.sum() <= 0:
    raise ConfigError(
      f'--style_weights must be finite, >= 0 and not all zero, got {",".join(values)}'
    )
  return weights_


def content_paths(contents: Sequence[str] = (), content_dir: str | None = None) -> list[str]:
  """`--content` files, then the image files of `--content_dir` in name order."""
  paths = [c for c in contents if c]
  if content_dir:
    folder = pathlib.Path(content_dir)
    if not folder.is_dir():
      what = 'not a folder' if folder.exists() else 'folder not found'
      raise ImageError(f'--content_dir {content_dir!r}: {what}')
    found = sorted(
      p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not found:
      raise ImageError(
        f'--content_dir {content_dir!r}: no image files ({", ".join(IMAGE_EXTENSIONS)})'
      )
    paths += [str(p) for p in found]
  if not paths:
    raise ConfigError('no content image: give --content FILE[,FILE...] or --content_dir DIR')
  return paths


def _is_folder_name(output: str) -> bool:
  return output.endswith(('/', os.sep)) or os.path.isdir(output) or not pathlib.Path(output).suffix


def output_paths(output: str, contents: Sequence[str]) -> list[pathlib.Path]:
  """Where each content's result goes, following `--output`.

  * a pattern with `{content}` (the content file's name without extension) and/or `{index}`
    (its position, from 0), e.g. `out/{content}_swirls.jpg`: one file per content;
  * a folder (an existing folder, a path ending in '/', or a name without extension), e.g.
    `out/`: `out/<content>.png` for each content;
  * a file name with an image extension, e.g. `out.png`: only for a single content.
  """
  if not output:
    raise ConfigError('--output is empty')
  stems = [pathlib.Path(c).stem for c in contents]
  if re.search(r'\{[^{}]*\}', output):
    try:
      paths = [pathlib.Path(output.format(content=s, index=i)) for i, s in enumerate(stems)]
    except (KeyError, IndexError, ValueError) as e:
      raise ConfigError(
        f'--output {output!r}: bad pattern ({e}); use {{content}} and/or {{index}}'
      ) from None
  elif _is_folder_name(output):
    paths = [pathlib.Path(output) / f'{s}.png' for s in stems]
  elif len(contents) > 1:
    raise ConfigError(
      f'--output {output!r} names one file but there are {len(contents)} content images; give '
      f'a folder (e.g. {str(pathlib.Path(output).with_suffix(""))!r}) or a pattern such as '
      f'{str(pathlib.Path(output).parent / ("{content}" + pathlib.Path(output).suffix))!r}'
    )
  else:
    paths = [pathlib.Path(output)]
  _check_distinct(paths, contents, 'content image')
  return paths


def _check_distinct(paths: Sequence[pathlib.Path], inputs: Sequence[str], what: str) -> None:
  seen: dict[str, int] = {}
  for i, path in enumerate(paths):
    key = os.path.realpath(path)
    if key in seen:
      raise ConfigError(
        f'{what}s {inputs[seen[key]]!r} and {inputs[i]!r} would both be written to '
        f'{str(path)!r}; rename one, or use an --output pattern with {{index}}'
      )
    seen[key] = i


def sibling(path: pathlib.Path, tag: str, suffix: str | None = None) -> pathlib.Path:
  """`out.png` -> `out.<tag>.png` (or with `suffix`), in the same folder."""
  return path.with_name(f'{path.stem}.{tag}{path.suffix if suffix is None else suffix}')


def check_not_inputs(outputs: Sequence[os.PathLike], inputs: Sequence[str]) -> None:
  """Refuses to write any of `outputs` over one of the run's own input files."""
  resolved = {os.path.realpath(p): p for p in inputs}
  for output in outputs:
    source = resolved.get(os.path.realpath(output))
    if source is None and os.path.exists(output):
      source = next((p for p in inputs if os.path.exists(p) and os.path.samefile(p, output)), None)
    if source is not None:
      raise ConfigError(
        f'output {os.fspath(output)!r} would overwrite the input image {source!r}; '
        'choose another --output'
      )


def check_folder_writable(folder: str | os.PathLike, label: str) -> None:
  """Raises `ConfigError` unless `folder` is, or can be created as, a writable folder."""
  path = pathlib.Path(folder).absolute()
  if path.exists() and not path.is_dir():
    raise ConfigError(f'{label} {os.fspath(folder)!r}: is a file, not a folder')
  existing = path
  while not existing.exists() and existing != existing.parent:
    existing = existing.parent
  if not existing.is_dir():
    raise ConfigError(
      f'{label} {os.fspath(folder)!r}: cannot create it, {str(existing)!r} is a file'
    )
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ConfigError(f'{label} {os.fspath(folder)!r}: folder {str(existing)!r} is not writable')


def load_images(
  paths: Sequence[str], label: str, max_side: int | None, rows: Sequence[int] | None = None
) -> list[np.ndarray | None]:
  """Loads `paths` (only the indices in `rows`, if given: the others are None)."""
  wanted = set(range(len(paths)) if rows is None else rows)
  return [
    images.load_image(p, max_side=max_side, label=label) if i in wanted else None
    for i, p in enumerate(paths)
  ]


def image_shape(path: str, label: str, max_side: int) -> tuple[int, int]:
  """(H, W) of the image at `path` once its longest side is `max_side`, reading the header only."""
  try:
    with Image.open(path) as image:
      width, height = image.size
      orientation = image.getexif().get(0x0112)
  except Exception:  # Let load_image report the problem, with its wording.
    return images.load_image(path, max_side=max_side, label=label).shape[:2]
  if orientation in (5, 6, 7, 8):
    width, height = height, width
  scale = max_side / max(height, width)
  return max(1, round(height * scale)), max(1, round(width * scale))


def _check_shapes(
  paths: Sequence[str], loaded: Sequence[np.ndarray | None], shapes: Sequence[tuple[int, int]]
) -> None:
  for path, image, shape in zip(paths, loaded, shapes, strict=True):
    if image is not None and image.shape[:2] != tuple(shape):
      raise ImageError(
        f'content image {path!r}: decoded as {image.shape[1]}x{image.shape[0]} pixels but its '
        f'header gives {shape[1]}x{shape[0]}'
      )


def group_by_size(
  shapes: Sequence[tuple[int, int]], batch_size: int = 0
) -> list[tuple[tuple[int, int], list[int]]]:
  """Indices grouped by equal (H, W), in order of first appearance, at most `batch_size` each."""
  groups: dict[tuple[int, int], list[int]] = {}
  for i, shape in enumerate(shapes):
    groups.setdefault(tuple(shape), []).append(i)
  out = []
  for shape, indices in groups.items():
    step = batch_size or len(indices)
    out += [(shape, indices[i : i + step]) for i in range(0, len(indices), step)]
  return out


def style_side(config: ml_collections.ConfigDict) -> int:
  """Longest side the styles are loaded at: what the engine resizes them to at the final scale."""
  return int(config.style_size or max(16, round(config.style_scale * config.image_size)))


def save_points(config: ml_collections.ConfigDict, save_every: int) -> list[int]:
  """Steps (counted over all scales) after which `--save_every N` writes intermediate images.

  Images exist only between compiled chunks of `config.chunk_size` steps, so an image is written
  at the first chunk boundary at or after each multiple of N (not after the last step: that is
  the output itself).
  """
  if save_every <= 0:
    return []
  boundaries, offset = [], 0
  for steps in engine.steps_per_scale(config):
    boundaries += [
      offset + min(c * config.chunk_size, steps)
      for c in range(1, 1 + -(-steps // config.chunk_size))
    ]
    offset += steps
  points, previous = [], 0
  for b in boundaries[:-1]:
    if b // save_every > previous // save_every:
      points.append(b)
    previous = b
  return points


# ---------------------------------------------------------------------------------------------
# The commands.


class _Session:
  """What the batches of one command share: config, network, progress display and run record."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    dist: Distributed,
    batches: Sequence[tuple[tuple[int, int], list[int]]],
    names: Sequence[str],
    workdir: str | None,
    info: dict[str, Any],
    reporter: reporting.ProgressReporter | None,
  ):
    self.config, self.dist, self.workdir = config, dist, workdir
    self.batches = list(batches)
    self.records = [records.BatchRecord([names[i] for i in pairs], size) for size, pairs in batches]
    self.info = {
      'command': sys.argv,
      **info,
      'devices': jax.device_count(),
      'processes': dist.process_count,
      'jax': jax.__version__,
    }
    self.reporter = reporter or reporting.ProgressReporter(config, len(self.batches))
    self.current = 0  # The batch running (or that failed).
    logging.info('Loading VGG19 weights (%s)', config.weights)
    self.network = weights.load_vgg19(
      config.weights, pooling=config.pooling, dtype=jnp.dtype(config.dtype)
    )

  def local(self, b: int) -> list[int]:
    """This process's pairs of batch `b` (indices into the command's pairs)."""
    pairs = self.batches[b][1]
    return [pairs[r] for r in process_share(len(pairs), self.dist)[0]]

  def run(
    self,
    b: int,
    make_inputs: Callable[[list[int]], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]],
    styles: Sequence[np.ndarray],
    on_progress: Callable[[engine.Progress], None] | None = None,
  ) -> np.ndarray:
    """Stylizes batch `b`; returns the results of all its pairs, on every process."""
    self.current = b
    contents, style_weights, init_images = make_inputs(self.local(b))

    def callback(progress: engine.Progress) -> None:
      self.reporter(progress)
      if on_progress is not None:
        on_progress(progress)

    self.reporter.start_batch(b)
    start = time.monotonic()
    try:
      result = engine.stylize(
        contents,
        styles,
        self.config,
        style_weights=style_weights,
        init_images=init_images,
        network=self.network,
        callback=callback,
      )
    finally:
      self.reporter.close()
    # Drop the duplicate a process without pairs of its own passed (see `process_share`).
    real = len(self.batches[b][1])
    history = result.history
    self.records[b].history = dataclasses.replace(
      history,
      total=history.total[:, :real],
      terms={name: values[:, :real] for name, values in history.terms.items()},
      term_totals=history.term_totals[:, :real],
    )
    self.records[b].seconds = time.monotonic() - start
    return np.asarray(result.images)[:real]

  def finish(self, status: str) -> None:
    """Writes the run record into the workdir (process 0), whatever the outcome."""
    if self.workdir and self.dist.is_writer:
      records.write_workdir(
        self.workdir, self.config, self.records, {**self.info, 'status': status}
      )
      logging.info('Wrote the run record (%s) to %s', status, self.workdir)


def _position(exc: StylizeInterrupted, config: ml_collections.ConfigDict) -> str:
  steps = engine.steps_per_scale(config)
  where = f'at step {exc.step} of {steps[exc.scale]}'
  return where + (f' at scale {exc.scale + 1} of {len(steps)}' if len(steps) > 1 else '')


def _check_outputs(
  dist: Distributed,
  outputs: Sequence[pathlib.Path],
  planned: Sequence[pathlib.Path],
  inputs: Sequence[str],
  workdir: str | None,
) -> None:
  check_not_inputs(planned, inputs)
  if dist.is_writer:
    for path in outputs:
      images.check_writable(path, label='output image')
    if workdir:
      check_folder_writable(workdir, '--workdir')


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

  Every input, output and setting is checked before the weights are loaded. Contents of the same
  size after resizing run as one batch (at most `batch_size` contents, 0: no limit); each result
  is written as soon as its batch is done. With several processes, each loads only the contents
  of its share of each batch (`process_share`) and process 0 writes the results.

  Returns:
    The output paths, one per content image (see `output_paths`).

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
  content_list = content_paths(contents, content_dir)
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
  outputs = output_paths(output, content_list)
  points = save_points(config, save_every)
  planned = [*outputs, *(sibling(p, f'step{s:04d}') for p in outputs for s in points)]
  _check_outputs(dist, outputs, planned, [*content_list, *styles, *init_list], workdir)
  # Resuming from `out.interrupted.png` may replace it (it is read first), not the other inputs.
  rescue = [sibling(p, tag, '.png') for p in outputs for tag in ('interrupted', 'last_finite')]
  check_not_inputs(rescue, [*content_list, *styles])

  # Sizes come from the files' headers, so that a process decodes only its own contents.
  shapes = [image_shape(p, 'content image', config.image_size) for p in content_list]
  style_images = load_images(styles, 'style image', style_side(config))
  batches = group_by_size(shapes, batch_size)
  mine = sorted({i for b in range(len(batches)) for i in _share(batches[b][1], dist)})
  loaded = load_images(content_list, 'content image', config.image_size, mine)
  _check_shapes(content_list, loaded, shapes)
  inits = load_images(init_list, 'init image', config.image_size, mine) if init_list else None
  logging.info(
    '%d content image(s) in %d batch(es), %d style image(s), %s steps at %d px',
    len(content_list),
    len(batches),
    len(styles),
    '+'.join(map(str, engine.steps_per_scale(config))),
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
  session = _Session(config, dist, batches, stems, workdir, info, reporter)

  def make_inputs(local: list[int]):
    stacked_inits = None if inits is None else np.stack([inits[i] for i in local])
    return np.stack([loaded[i] for i in local]), blend, stacked_inits

  points_set = set(points)

  def save_intermediate(progress: engine.Progress) -> None:
    step = session.reporter.batch_step(progress)
    if step in points_set and dist.is_writer:
      pairs = session.batches[session.current][1]
      for i, image in zip(pairs, np.asarray(progress.images), strict=False):
        images.save_image(sibling(outputs[i], f'step{step:04d}'), image, label='intermediate image')
      session.reporter.close()  # The log line goes below the progress bar, not into it.
      logging.info('Saved intermediate image(s) at step %d', step)

  try:
    for b, (_, pairs) in enumerate(batches):
      results = session.run(b, make_inputs, style_images, save_intermediate if points else None)
      if dist.is_writer:
        for i, image in zip(pairs, results, strict=True):
          images.save_image(outputs[i], image, label='output image')
          logging.info('Wrote %s (%dx%d)', outputs[i], image.shape[1], image.shape[0])
  except StylizeInterrupted as e:
    session.finish('interrupted')
    # The engine hands each process its own pairs' images (no collective on Ctrl-C): each
    # process writes those.
    local = session.local(session.current) if not _duplicate(session, dist) else []
    saved = [sibling(outputs[i], 'interrupted', '.png') for i in local]
    for path, image in zip(saved, np.asarray(e.images), strict=False):
      images.save_image(path, image, label='interrupted image')
    not_started = [content_list[i] for _, pairs in batches[session.current + 1 :] for i in pairs]
    message = (
      f'stopped {_position(e, config)}; saved the current image(s) to '
      f'{", ".join(map(str, saved))}; to resume, run again with --content '
      f'{",".join(content_list[i] for i in local)} --init_image {",".join(map(str, saved))} '
      '(and the same other flags)'
    )
    if not_started:
      message += f'; not started: {",".join(not_started)}'
    raise Interrupted(message) from None
  except NonFiniteLossError as e:
    session.finish('non-finite loss')
    if e.images is None:
      raise
    pairs = batches[session.current][1]
    saved = [sibling(outputs[i], 'last_finite', '.png') for i in pairs]
    if dist.is_writer:
      for path, image in zip(saved, np.asarray(e.images), strict=False):
        images.save_image(path, image, label='last finite image')
    raise NonFiniteLossError(
      f'{e}; saved to {", ".join(map(str, saved))}', images=e.images, terms=e.terms
    ) from None
  session.finish('done')
  return outputs


def _share(pairs: Sequence[int], dist: Distributed) -> list[int]:
  return [pairs[r] for r in process_share(len(pairs), dist)[0]]


def _duplicate(session: _Session, dist: Distributed) -> bool:
  return process_share(len(session.batches[session.current][1]), dist)[1]


def grid_cell_paths(
  output: str | os.PathLike, contents: Sequence[str], styles: Sequence[str]
) -> list[list[pathlib.Path]]:
  """`grid_cells/<content>__<style>.png` next to the grid, for every content and style."""
  folder = pathlib.Path(output).parent / 'grid_cells'
  for what, paths in (('content', contents), ('style', styles)):
    stems: dict[str, str] = {}
    for path in paths:
      stem = pathlib.Path(path).stem
      if stem in stems:
        raise ConfigError(
          f'{what} images {stems[stem]!r} and {path!r} have the same name {stem!r}, so their '
          f'grid cells would collide; rename one'
        )
      stems[stem] = path
  return [
    [folder / f'{pathlib.Path(c).stem}__{pathlib.Path(s).stem}.png' for s in styles]
    for c in contents
  ]


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
  between and around them (see `compose_grid`). Each result is also written as
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
  if _is_folder_name(output):
    raise ConfigError(f'--output {output!r}: give the grid image file name, e.g. grid.png')
  grid_path = pathlib.Path(output)
  cells = grid_cell_paths(grid_path, contents, styles)
  planned = [
    grid_path,
    sibling(grid_path, 'interrupted', '.png'),
    sibling(grid_path, 'last_finite', '.png'),
    *(p for row in cells for p in row),
  ]
  _check_outputs(dist, [grid_path], planned, [*contents, *styles], workdir)

  num_styles = len(styles)
  shapes = [image_shape(p, 'content image', config.image_size) for p in contents]
  style_images = load_images(styles, 'style image', style_side(config))
  # Pair p is content p // num_styles with style p % num_styles.
  batches = [
    (shape, [i * num_styles + j for i in group for j in range(num_styles)])
    for shape, group in group_by_size(shapes, batch_size and max(1, batch_size // num_styles))
  ]
  mine = {p // num_styles for _, pairs in batches for p in _share(pairs, dist)}
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
    '+'.join(map(str, engine.steps_per_scale(config))),
    config.image_size,
  )
  info = {'contents': list(contents), 'styles': list(styles), 'output': str(grid_path)}
  names = [f'{cell.stem}' for row in cells for cell in row]
  session = _Session(config, dist, batches, names, workdir, info, reporter)
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
    sheet = grid.compose_grid(rows, loaded, style_images, size, gutter)
    images.save_image(path, sheet, label=label)
    logging.info('Wrote %s (%dx%d)', path, sheet.shape[1], sheet.shape[0])

  try:
    for b, (_, pairs) in enumerate(batches):
      for p, image in zip(pairs, session.run(b, make_inputs, style_images), strict=True):
        results[p] = image
        if dist.is_writer:
          images.save_image(cells[p // num_styles][p % num_styles], image, label='grid cell')
  except StylizeInterrupted as e:
    session.finish('interrupted')
    if not _duplicate(session, dist):
      for p, image in zip(session.local(session.current), np.asarray(e.images), strict=False):
        results[p] = image
    saved = sibling(grid_path, 'interrupted', '.png')
    write_grid(saved, 'interrupted grid')
    raise Interrupted(
      f'stopped {_position(e, config)}; saved the partial grid to {saved}'
    ) from None
  except NonFiniteLossError as e:
    session.finish('non-finite loss')
    if e.images is None:
      raise
    for p, image in zip(batches[session.current][1], np.asarray(e.images), strict=False):
      results[p] = image
    saved = sibling(grid_path, 'last_finite', '.png')
    write_grid(saved, 'last finite grid')
    raise NonFiniteLossError(f'{e}; saved to {saved}', images=e.images, terms=e.terms) from None
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
    check_folder_writable(cache_dir, '--cache_dir')
  weights.load_vgg19_params(source, path, cache_directory=cache_dir)
  return weights.cache_path(source, cache_dir)
