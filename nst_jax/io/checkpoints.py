"""Numbered checkpoints of a pytree and its JSON metadata in one folder, with orbax.

`CheckpointStore` wraps orbax's `CheckpointManager`: every save is written into a temporary
folder and renamed when complete (atomic: a save cut short leaves the earlier checkpoints as they
were, and is ignored), in the background after the arrays were copied off the devices
(asynchronous: the caller's buffers may be reused at once), keeping the last `keep`. Sharded
`jax.Array`s are written by every process for its own shards and restored onto the shardings of
a target tree; all processes must call `save` and `restore` together.

    store = CheckpointStore('runs/x/checkpoints/batch_0')
    store.save(100, tree, {'scale': 0})
    restored = store.restore(lambda meta: template_like(meta))  # (step, tree, meta) or None
    store.close()
"""

import logging as python_logging
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any, NamedTuple

from absl import logging

_TREE, _META = 'tree', 'meta'


class Restored(NamedTuple):
  """A checkpoint read back: its step, its tree (on the target's shardings) and its metadata.

  `skipped` lists the later checkpoints that could not be read, each as 'step N (reason)'.
  """

  step: int
  tree: Any
  meta: dict[str, Any]
  skipped: tuple[str, ...] = ()


class _QuietOrbax(python_logging.Filter):
  """Drops orbax's INFO lines (several per save) from absl's log; its warnings stay."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno > python_logging.INFO or f'{os.sep}orbax{os.sep}' not in record.pathname


_QUIET = _QuietOrbax()


class CheckpointStore:
  """The checkpoints in `directory` (created on first save): see the module docstring.

  Args:
    directory: the folder; each checkpoint is a subfolder named by its step.
    keep: how many of the latest checkpoints to keep (at least 2, so that a damaged latest one
      leaves another to fall back on).
    asynchronous: write in a background thread (`wait` blocks until written).
  """

  def __init__(self, directory: str | os.PathLike, *, keep: int = 2, asynchronous: bool = True):
    import orbax.checkpoint as ocp  # A second of imports: only for runs that checkpoint.

    logging.get_absl_logger().addFilter(_QUIET)
    self._ocp = ocp
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max(2, keep), enable_async_checkpointing=asynchronous, create=True
      ),
    )

  def steps(self) -> list[int]:
    """The steps of the complete checkpoints, in increasing order."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, tree: Any, meta: dict[str, Any]) -> None:
    """Saves `tree` (a pytree of arrays; no zero-size ones) and `meta` (JSON) as `step`.

    Returns once the arrays are copied off the devices; the files are written in the background.
    """
    ocp = self._ocp
    args = ocp.args.Composite(
      **{_TREE: ocp.args.StandardSave(tree), _META: ocp.args.JsonSave(meta)}
    )
    self._manager.save(step, args=args, force=True)

  def restore(self, target: Callable[[dict[str, Any]], Any]) -> Restored | None:
    """The latest checkpoint that can be read, or None if there is none.

    `target(meta)` returns a tree shaped like the saved one, whose arrays give the restored
    arrays' shardings; an error it raises (say, the checkpoint is of another run) propagates. A
    checkpoint that cannot be read (damaged files) is skipped for the one before it, and the
    skip is logged and listed in `Restored.skipped`.
    """
    ocp = self._ocp
    skipped = []
    for step in reversed(self.steps()):
      try:
        only_meta = ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
        meta = dict(self._manager.restore(step, args=only_meta)[_META])
      except Exception as e:  # noqa: BLE001 (orbax and tensorstore raise many kinds)
        skipped.append(f'step {step} ({_reason(e)})')
        continue
      like = target(meta)
      try:
        tree = self._manager.restore(
          step, args=ocp.args.Composite(**{_TREE: ocp.args.StandardRestore(like)})
        )[_TREE]
      except Exception as e:  # noqa: BLE001
        skipped.append(f'step {step} ({_reason(e)})')
        continue
      for skip in skipped:
        logging.warning(
          'checkpoint %s in %s cannot be read; resuming from step %d', skip, self.directory, step
        )
      return Restored(step, tree, meta, tuple(skipped))
    for skip in skipped:
      logging.warning('checkpoint %s in %s cannot be read; starting afresh', skip, self.directory)
    return None

  def wait(self) -> None:
    """Blocks until every save has been written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for the saves, then releases the manager's threads."""
    self._manager.close()


def delete_checkpoints(directory: str | os.PathLike) -> None:
  """Removes the folder of a `CheckpointStore` and everything in it (to start over)."""
  shutil.rmtree(directory, ignore_errors=True)


def _reason(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  text = lines[0] if lines else type(error).__name__
  return text if len(text) <= 160 else text[:157] + '...'
