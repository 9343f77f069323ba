"""A run's workdir: its record, TensorBoard summaries and checkpoints, and the flags for them.

    runs/x/config.json, run.json, history.jsonl, loss.png   the record (`nst_jax.app.records`)
    runs/x/events.out.tfevents.*                            summaries (`nst_jax.app.summaries`)
    runs/x/checkpoints/batch_<b>/<step>/                    checkpoints (`nst_jax.run.resume`)

Running a command again with the same `--workdir` continues it where it stopped, as flax's
examples do; `--restart` deletes the checkpoints and starts over.
"""

import dataclasses
import pathlib
from typing import Any

from absl import flags

from nst_jax.errors import ConfigError
from nst_jax.run import resume


@dataclasses.dataclass(frozen=True)
class Workdir:
  """Where a command keeps its record, summaries and checkpoints, and how often it writes them.

  Attributes:
    path: the folder.
    restart: delete its checkpoints first and start over (else resume from them).
    checkpoint_every: a checkpoint at the first chunk boundary at or after each multiple of this
      many steps, besides those at each scale's end and on Ctrl-C; -1: no checkpoints at all.
    image_every: TensorBoard images every this many steps; 0: none.
  """

  path: str
  restart: bool = False
  checkpoint_every: int = resume.DEFAULT_EVERY
  image_every: int = 100

  def __post_init__(self):
    if self.checkpoint_every < -1:
      raise ConfigError(f'--checkpoint_every={self.checkpoint_every} must be >= -1')
    if self.image_every < 0:
      raise ConfigError(f'--summary_images_every={self.image_every} must be >= 0')

  @property
  def checkpoints(self) -> bool:
    return self.checkpoint_every >= 0

  @property
  def checkpoint_root(self) -> pathlib.Path:
    return pathlib.Path(self.path) / 'checkpoints'

  def batch_checkpoints(self, batch: int) -> pathlib.Path:
    """The checkpoint folder of batch `batch` of the command."""
    return self.checkpoint_root / f'batch_{batch}'


def as_workdir(workdir: 'str | Workdir | None') -> Workdir | None:
  """A `Workdir` with the default settings for a folder name; None stays None."""
  if workdir is None or isinstance(workdir, Workdir):
    return workdir
  return Workdir(str(workdir))


def define_flags() -> None:
  """--workdir, --restart, --checkpoint_every and --summary_images_every."""
  flags.DEFINE_string(
    'workdir', None, 'Folder for the record, TensorBoard summaries and checkpoints (resumes).'
  )
  flags.DEFINE_boolean(
    'restart', False, 'Delete the checkpoints in --workdir and start over (default: resume).'
  )
  flags.DEFINE_integer(
    'checkpoint_every',
    resume.DEFAULT_EVERY,
    'Checkpoint into --workdir every N steps (and at each scale end and on Ctrl-C); -1: never.',
  )
  flags.DEFINE_integer(
    'summary_images_every', 100, 'TensorBoard images every N steps in --workdir; 0: none.'
  )


def from_flags() -> Workdir | None:
  """The `Workdir` of the flags of `define_flags`; None without --workdir."""
  values: dict[str, Any] = {name: flags.FLAGS[name].value for name in _FLAGS}
  path = values['workdir']
  if path is None:
    if values['restart']:
      raise ConfigError('--restart needs --workdir (the run to start over)')
    return None
  return Workdir(
    path,
    restart=values['restart'],
    checkpoint_every=values['checkpoint_every'],
    image_every=values['summary_images_every'],
  )


_FLAGS = ('workdir', 'restart', 'checkpoint_every', 'summary_images_every')
