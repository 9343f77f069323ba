"""`scripts/stylize_video.py`: a clip stylized without flicker, on the shared command protocol.

A batch of the command is a batch of `nst_jax.run.video`: a pass over every frame (multipass and
independent modes, the first pass of sweeps) or one frame (sequential mode, a sweep's frame); its
inputs come from the batches before it.
Every input and output is checked, and the optical flow estimated, before the network loads.

Resume is per batch and self-contained: after each batch the stylized frames so far go to
`<workdir>/video_state.npz` (float32, so a resumed run is the run that was interrupted), with a
fingerprint of the clip, the style and the config. Run the same command again after Ctrl-C and
the batches already done are skipped; a workdir holding another run is refused.
"""

import dataclasses
import hashlib
import io
import json
import os
import pathlib

import ml_collections
import numpy as np
from absl import logging

from nst_jax.app import reporting, session
from nst_jax.app.workdir import Workdir
from nst_jax.errors import ConfigError
from nst_jax.io import files, images, paths
from nst_jax.io import flow as flow_lib
from nst_jax.io import video as video_io
from nst_jax.run import schedule
from nst_jax.run import video as video_lib
from nst_jax.run.pairs import Distributed

STATE_FILE = 'video_state.npz'


def fingerprint(frames: np.ndarray, style: np.ndarray, config: ml_collections.ConfigDict) -> str:
  """A hash of what determines a run's results: the fitted clip, the style and the config."""
  digest = hashlib.sha256()
  for array in (frames, style):
    digest.update(str(array.shape).encode())
    digest.update(np.ascontiguousarray(array, np.float32).tobytes())
  digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
  return digest.hexdigest()


def load_state(workdir: pathlib.Path, key: str, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
  """`(batches done, results)` saved in `workdir` for the run `key`; (0, None) if none.

  Raises:
    ConfigError: the workdir holds another run's state.
  """
  path = workdir / STATE_FILE
  if not path.is_file():
    return 0, None
  try:
    with np.load(path) as saved:
      other, done, results = str(saved['fingerprint']), int(saved['done']), saved['results']
  except Exception as e:  # A damaged file: say so rather than silently starting over.
    raise ConfigError(f'--workdir {str(workdir)!r}: cannot read {STATE_FILE} ({e})') from None
  if other != key or results.shape != shape:
    raise ConfigError(
      f'--workdir {str(workdir)!r} holds a video run with other frames, style or settings; '
      f'give another --workdir, or delete {path} to start over'
    )
  return done, results


def save_state(workdir: pathlib.Path, key: str, done: int, results: np.ndarray) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, fingerprint=key, done=done, results=np.asarray(results, np.float32))
  workdir.mkdir(parents=True, exist_ok=True)
  files.atomic_write(workdir / STATE_FILE, lambda f: f.write(buffer.getvalue()))


@dataclasses.dataclass
class VideoCommand(session.Command):
  """Stylizes the clip at `input` (a frame folder, a video file or one image) with the style
  image `style_file`, writing `output` (a frame folder with the input's frame names, or a video
  file at `fps`, default the input's or 24). See the module docstring for batches and resume."""

  config: ml_collections.ConfigDict
  dist: Distributed
  input: str
  style_file: str
  output: str
  workdir: str
  fps: float = 0.0

  def plan(self) -> None:
    config = self.config
    if self.fps < 0:
      raise ConfigError(f"--fps={self.fps} must be >= 0 (0: the input video's, else 24)")
    video_lib.check_config(config)
    if not self.style_file:
      raise ConfigError('no style image: give --style FILE')
    side = schedule.final_style_side(config)
    style = images.load_image(self.style_file, max_side=side, label='style image')
    clip = video_io.read_frames(self.input, config.image_size)
    video_io.check_output(self.output, clip.names, [*clip.sources, self.style_file])
    paths.check_folder_writable(self.workdir, '--workdir')
    if config.video.mode != 'independent' and len(clip.images) > 1:
      flow_lib.check_available()
    if os.path.realpath(self.workdir) in {os.path.realpath(s) for s in clip.sources}:
      raise ConfigError(f'--workdir {self.workdir!r} is one of the inputs')
    self.clip, self.styles = clip, [style]
    logging.info(
      '%d frame(s) of %dx%d from %s',
      len(clip.images),
      clip.images.shape[2],
      clip.images.shape[1],
      self.input,
    )
    self.run = video_lib.VideoRun.create(clip.images, config)  # Settles config, finds the flow.
    self.key = fingerprint(self.run.frames, style, config)
    self.first, results = load_state(pathlib.Path(self.workdir), self.key, self.run.results.shape)
    if results is not None:
      self.run.results[...] = results
      logging.info(
        'Resuming from %s: %d of %d batch(es) done (%s)',
        self.workdir,
        self.first,
        len(self.run.batches),
        self.run.batches[self.first - 1].label,
      )
    remaining = self.run.batches[self.first :]
    size = tuple(self.run.frames.shape[1:3])
    self.batches = [(size, list(b.frames)) for b in remaining]
    self.labels = [b.label for b in remaining]
    self.names = [pathlib.Path(n).stem for n in clip.names]
    self.info = {
      'input': self.input,
      'style': self.style_file,
      'output': self.output,
      'frames': len(clip.images),
      'mode': config.video.mode,
      'resumed_at_batch': self.first,
    }

  def _batch(self) -> int:
    return self.first + self.session.current

  def inputs(self, pairs: list[int]) -> session.BatchInputs:
    b = self._batch()
    given = self.run.inputs(b)
    where = [self.run.batches[b].frames.index(p) for p in pairs]
    init = None if given.init_images is None else given.init_images[where]
    guides = {name: g[where] for name, g in given.guides.items()}
    return session.BatchInputs(
      self.run.frames[pairs], init_images=init, guides=guides, config=given.config
    )

  def save(self, pairs: list[int], results: np.ndarray) -> None:
    b = self._batch()
    self.run.done(b, results)
    if self.dist.is_writer:
      save_state(pathlib.Path(self.workdir), self.key, b + 1, self.run.results)
      logging.info('%s done, saved to %s', self.run.batches[b].label, self.workdir)

  def rescue(self, tag: str, results: dict[int, np.ndarray]) -> list[pathlib.Path]:
    """Writes the batch's current frames to `<workdir>/<tag>/`, to look at (a resumed run
    redoes the batch)."""
    folder = pathlib.Path(self.workdir) / tag
    saved = [folder / f'{self.names[i]}.png' for i in results]
    if tag == 'interrupted' or self.dist.is_writer:
      for path, image in zip(saved, results.values(), strict=True):
        images.save_image(path, image, label=f'{tag.replace("_", " ")} frame')
    return [folder]

  def resume_hint(self, pairs: list[int], saved: list[pathlib.Path]) -> str:
    b = self._batch()
    done = f'{b} of {len(self.run.batches)} batch(es) done' if b else 'no batch done yet'
    return f'; {done}: run the same command again to continue from {self.run.batches[b].label}'

  def finish(self) -> pathlib.Path:
    if self.dist.is_writer:
      video_io.write_frames(
        self.output, self.run.results, self.clip.names, self.fps or self.clip.fps
      )
      logging.info('Wrote %d frame(s) to %s', len(self.run.results), self.output)
    return pathlib.Path(self.output)


def stylize_video_files(
  config: ml_collections.ConfigDict,
  *,
  input: str,  # noqa: A002 (the flag's name)
  style: str,
  output: str,
  workdir: str | None = None,
  independent: bool = False,
  fps: float = 0.0,
  dist: Distributed | None = None,
  reporter: reporting.ProgressReporter | None = None,
) -> pathlib.Path:
  """Stylizes a clip's files: `scripts/stylize_video.py` (see `VideoCommand`).

  `independent` stylizes every frame on its own (config.video.mode='independent'); `workdir`
  defaults to `<output>.work`. Returns the output's path.

  Raises:
    NSTError: a bad input, output or setting (one line), before any work.
    Interrupted: Ctrl-C; the finished batches are kept in the workdir for the next run.
  """
  if not output:
    raise ConfigError('--output is empty')
  config = ml_collections.ConfigDict(config.to_dict())  # Settled in place by the command.
  if independent:
    config.video.mode = 'independent'
  workdir = workdir or output.rstrip('/' + os.sep) + '.work'
  dist = dist or Distributed()
  command = VideoCommand(config, dist, input, style, output, workdir, fps)
  # Resume is per batch here (the module docstring), not from the engine's checkpoints: a
  # resumed run skips the batches done, which would shift the checkpoints' batch numbers.
  folder = Workdir(workdir, checkpoint_every=-1)
  return session.run_command(command, config, dist, folder, reporter)
