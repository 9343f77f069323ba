"""Video in and out: a folder of frames (sorted by name) or a video file, read and written.

Video files go through imageio with imageio-ffmpeg, a wheel that bundles ffmpeg (the `video`
extra: `pip install 'nst_jax[video]'`); animated GIFs through Pillow. Frames are fitted to the
run's size as they are decoded (`resample.resize`, as every input of nst_jax), so a long clip
costs memory at that size only. Every problem is one `ImageError` line naming the input.
"""

import contextlib
import os
import pathlib
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from absl import logging

from nst_jax.core import resample
from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import files, images, paths

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.m4v', '.mkv', '.avi', '.webm', '.gif')
DEFAULT_FPS = 24.0


class Frames(NamedTuple):
  """A clip, fitted to the run's size.

  Attributes:
    images: (F, H, W, 3) float32 in [0, 1].
    names: one file name per frame: the input's own for a folder, `frame_00001.png`... for a
      video file.
    fps: frames per second of a video file, else None.
    sources: the input files (the frames of a folder, or the video file).
  """

  images: np.ndarray
  names: list[str]
  fps: float | None
  sources: list[str]


def is_video_file(path: str | os.PathLike) -> bool:
  return pathlib.Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _imageio():
  try:
    import imageio.v3 as iio
  except ImportError:
    raise ConfigError(
      "video files need imageio, which is not installed: pip install 'nst_jax[video]'"
    ) from None
  return iio


def _ffmpeg_plugin(path: pathlib.Path) -> str | None:
  """imageio's plugin for `path`: Pillow for GIFs, else ffmpeg (checked to be installed)."""
  if path.suffix.lower() == '.gif':
    return None
  try:
    import imageio_ffmpeg  # noqa: F401
  except ImportError:
    raise ConfigError(
      "video files need imageio-ffmpeg, which is not installed: pip install 'nst_jax[video]'"
    ) from None
  return 'FFMPEG'


@contextlib.contextmanager
def _ffmpeg_subprocess():
  """imageio-ffmpeg starts ffmpeg with `subprocess`, whose fork Python warns about in JAX's
  multithreaded process; it is harmless there (the child execs ffmpeg at once)."""
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='os.fork', category=RuntimeWarning)
    yield


def _one_line(exc: BaseException) -> str:
  lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
  return lines[0] if lines else type(exc).__name__


def _fit(frame: np.ndarray, max_side: int) -> np.ndarray:
  image = np.asarray(frame)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  image = image[..., :3].astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)
  return np.asarray(resample.resize(image, resample.fit_size(image.shape[:2], max_side)))


def read_video(path: str | os.PathLike, max_side: int) -> Frames:
  """Decodes every frame of a video file, fitted to `max_side` pixels on its longest side."""
  path = pathlib.Path(path)
  where = f'--input {str(path)!r}'
  if not path.is_file():
    raise ImageError(f'{where}: file not found')
  iio, plugin = _imageio(), _ffmpeg_plugin(path)
  try:
    with _ffmpeg_subprocess():
      frames = [_fit(frame, max_side) for frame in iio.imiter(path, plugin=plugin)]
      meta = iio.immeta(path, plugin=plugin)
  except Exception as exc:  # Any decoder's failure: a file that is not a video we can read.
    raise ImageError(f'{where}: cannot decode the video ({_one_line(exc)})') from None
  if not frames:
    raise ImageError(f'{where}: the video has no frames')
  fps = meta.get('fps') or (1000.0 / meta['duration'] if meta.get('duration') else None)
  names = [f'frame_{i + 1:05d}.png' for i in range(len(frames))]
  return Frames(np.stack(frames), names, float(fps) if fps else None, [str(path)])


def frame_files(folder: str | os.PathLike) -> list[pathlib.Path]:
  """The image files of a folder, sorted by name; other files are ignored, with a note."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ImageError(f'--input {str(folder)!r}: folder not found')
  entries = sorted(p for p in folder.iterdir() if p.is_file())
  found = [p for p in entries if p.suffix.lower() in paths.IMAGE_EXTENSIONS]
  others = [p.name for p in entries if p not in found]
  if not found:
    raise ImageError(
      f'--input {str(folder)!r}: no image files ({", ".join(paths.IMAGE_EXTENSIONS)})'
    )
  if others:
    shown = ', '.join(others[:5]) + (f' and {len(others) - 5} more' if len(others) > 5 else '')
    logging.warning(
      '--input %s: ignoring %d file(s) that are not images: %s', folder, len(others), shown
    )
  return found


def read_folder(folder: str | os.PathLike, max_side: int) -> Frames:
  """Reads a folder's frames (sorted by name), all of one size, fitted to `max_side`."""
  found = frame_files(folder)
  sizes = [images.read_size(p, label='frame') for p in found]
  for path, size in zip(found, sizes, strict=True):
    if size != sizes[0]:
      raise ImageError(
        f'--input {str(folder)!r}: frames differ in size: {found[0].name} is '
        f'{sizes[0][1]}x{sizes[0][0]}, {path.name} is {size[1]}x{size[0]}'
      )
  loaded = [images.load_image(p, max_side=max_side, label='frame') for p in found]
  return Frames(np.stack(loaded), [p.name for p in found], None, [str(p) for p in found])


def read_frames(path: str | os.PathLike, max_side: int) -> Frames:
  """A clip from a folder of frames, a video file, or a single image (a clip of one frame)."""
  if not path:
    raise ConfigError('--input is empty')
  if os.path.isdir(path):
    return read_folder(path, max_side)
  if is_video_file(path):
    return read_video(path, max_side)
  if pathlib.Path(path).suffix.lower() in paths.IMAGE_EXTENSIONS:
    image = images.load_image(path, max_side=max_side, label='--input')
    return Frames(image[None], [pathlib.Path(path).name], None, [str(path)])
  raise ImageError(
    f'--input {str(path)!r}: not a folder, a video file ({", ".join(VIDEO_EXTENSIONS)}) or an image'
  )


def output_files(output: str, names: Sequence[str]) -> list[pathlib.Path]:
  """Where the frames go: `[output]` for a video file, else `output/<name>` per frame."""
  if is_video_file(output):
    return [pathlib.Path(output)]
  if not paths.is_folder_name(output):
    raise ConfigError(
      f'--output {output!r}: give a folder for the frames, or a video file '
      f'({", ".join(VIDEO_EXTENSIONS)})'
    )
  return [pathlib.Path(output) / name for name in names]


def check_output(output: str, names: Sequence[str], sources: Sequence[str]) -> None:
  """Refuses an output that is one of the inputs, or that cannot be written; creates nothing."""
  planned = output_files(output, names)
  paths.check_not_inputs(planned, sources)
  if is_video_file(output):
    if os.path.isdir(output):
      raise ConfigError(f'--output {output!r}: is a folder, not a video file')
    if output.lower().endswith('.gif'):
      _imageio()
    else:
      _ffmpeg_plugin(pathlib.Path(output))
    problem = files.folder_problem(pathlib.Path(output).absolute().parent, 'the output folder')
  else:
    for path in planned:
      images.check_writable(path, label='output frame')
    problem = None
  if problem:
    raise ConfigError(f'--output {output!r}: {problem}')


def write_frames(output: str, frames: np.ndarray, names: Sequence[str], fps: float | None) -> None:
  """Writes (F, H, W, 3) frames in [0, 1]: a video file (at `fps`, default 24) or a folder."""
  if not is_video_file(output):
    for path, frame in zip(output_files(output, names), frames, strict=True):
      images.save_image(path, frame, label='output frame')
    return
  target = pathlib.Path(output)
  target.parent.mkdir(parents=True, exist_ok=True)
  pixels = images.to_8bit(frames)
  iio, fps = _imageio(), fps or DEFAULT_FPS
  # ffmpeg picks the container by the name's extension, so the temporary file keeps it.
  temp = target.with_name(f'.{target.stem}.partial{target.suffix}')
  try:
    if target.suffix.lower() == '.gif':
      iio.imwrite(temp, pixels, duration=round(1000.0 / fps), loop=0)
    else:
      # Even sizes for yuv420p; macro_block_size=2 keeps the frames' own size otherwise.
      with _ffmpeg_subprocess():
        iio.imwrite(
          temp, pixels, plugin=_ffmpeg_plugin(target), fps=fps, macro_block_size=2, quality=8
        )
    os.replace(temp, target)
  except BaseException as exc:
    temp.unlink(missing_ok=True)
    if isinstance(exc, Exception):
      raise ImageError(f'--output {output!r}: cannot write the video ({_one_line(exc)})') from None
    raise
