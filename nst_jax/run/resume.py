"""Checkpoints of a run's whole loop state, so that a resumed run equals an uninterrupted one.

The engine (`Stylization.run`) talks to a `Checkpoints` object: it asks once for a snapshot to
resume from, offers one after every chunk (saved when `due`), forces one at each scale's end and
on Ctrl-C, and waits for the writes before it returns. A `Snapshot` holds everything the loop
carries: the `LoopState` (iterate, optimizer state with L-BFGS's memory or Adam's moments, the
iterate average, plateau counters, PRNG keys, targets with any refreshed nearest-neighbour
matches, guides), the scale and step, and the history so far. Checkpoints are taken only at
chunk boundaries, so the resumed run's chunks are the uninterrupted run's.

`OrbaxCheckpoints` keeps them in a folder (`nst_jax.io.checkpoints`), each with the run's
`fingerprint` (its config, and a digest of each pair's inputs): a checkpoint of another run is
refused with one line naming what differs.

    stylize(contents, styles, config, checkpoints='runs/x/checkpoints')  # resumes if it can
"""

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import ml_collections
import numpy as np
from absl import logging

from nst_jax.errors import ConfigError
from nst_jax.io.checkpoints import CheckpointStore
from nst_jax.run.program import LoopState

DEFAULT_EVERY = 100  # Steps between checkpoints (at the first chunk boundary after each multiple).


class Snapshot(NamedTuple):
  """Where a run stands after a chunk.

  Attributes:
    scale: the scale of `state` (0 = coarsest).
    step: steps done over all scales (`sum(steps[:scale]) + state.step`): the checkpoint's number.
    ended: whether `state` ends its scale: a resumed run goes on at the next scale.
    state: the loop state (global, sharded).
    history: the history so far (`HistoryLog.to_json`).
  """

  scale: int
  step: int
  ended: bool
  state: LoopState
  history: dict[str, Any]


class Checkpoints(Protocol):
  """Where the engine saves and finds snapshots; `restore` is called first, once per run."""

  def restore(
    self, fingerprint: dict[str, Any], template: Callable[[int], LoopState]
  ) -> Snapshot | None:
    """The snapshot to resume from, or None to start afresh. `template(scale)` is a state of
    that scale, shaped (and sharded) like a saved one; `fingerprint` identifies the run."""

  def due(self, step: int) -> bool:
    """Whether a snapshot at `step` (steps over all scales, a chunk boundary) should be saved."""

  def save(self, snapshot: Snapshot) -> None:
    """Saves `snapshot` (it may return before the files are written)."""

  def wait(self) -> None:
    """Blocks until every save has been written."""


class OrbaxCheckpoints:
  """`Checkpoints` in a folder, with orbax: atomic, asynchronous, the last `keep` kept.

  Args:
    directory: the folder (created on the first save).
    every: a snapshot at the first chunk boundary at or after each multiple of `every` steps
      (over all scales); 0: only at the scales' ends and on Ctrl-C.
    keep: how many of the latest checkpoints are kept (at least 2).
    names: the pairs' names, for messages.
    hint: how to start over, appended to the message that refuses another run's checkpoint.
  """

  def __init__(
    self,
    directory: str | os.PathLike,
    *,
    every: int = DEFAULT_EVERY,
    keep: int = 2,
    names: Sequence[str] | None = None,
    hint: str = 'delete it to start over',
  ):
    if every < 0:
      raise ConfigError(f'checkpoint interval {every} must be >= 0 steps')
    self.store = CheckpointStore(directory, keep=keep)
    self.every, self.names, self.hint = every, names, hint
    self.fingerprint: dict[str, Any] | None = None
    self.restored: Snapshot | None = None  # What `restore` returned.
    self.last_step = -1  # The latest snapshot's step, saved or restored.

  def restore(self, fingerprint, template):
    self.fingerprint = fingerprint
    found = self.store.restore(lambda meta: self._template(meta, template))
    if found is None:
      return None
    meta = found.meta
    self.restored = Snapshot(meta['scale'], found.step, meta['ended'], found.tree, meta['history'])
    self.last_step = found.step
    logging.info('Resuming from the checkpoint at step %d in %s', found.step, self.store.directory)
    return self.restored

  def _template(self, meta: dict[str, Any], template: Callable[[int], LoopState]) -> LoopState:
    differences = fingerprint_differences(meta['fingerprint'], self.fingerprint, self.names)
    if differences:
      more = f' and {len(differences) - 4} more' if len(differences) > 4 else ''
      raise ConfigError(
        f'the checkpoint in {self.store.directory} is of another run: '
        f'{"; ".join(differences[:4])}{more}; {self.hint}'
      )
    return template(meta['scale'])

  def due(self, step: int) -> bool:
    return self.every > 0 and step // self.every > self.last_step // self.every

  def save(self, snapshot: Snapshot) -> None:
    if snapshot.step == self.last_step:  # Ctrl-C just after a save: nothing new.
      return
    meta = {
      'scale': snapshot.scale,
      'ended': snapshot.ended,
      'history': snapshot.history,
      'fingerprint': self.fingerprint,
    }
    self.store.save(snapshot.step, snapshot.state, meta)
    self.last_step = snapshot.step

  def wait(self) -> None:
    self.store.wait()

  def close(self) -> None:
    self.store.close()


def as_checkpoints(checkpoints: 'str | os.PathLike | Checkpoints | None') -> Checkpoints | None:
  """`stylize`'s `checkpoints` argument: a folder becomes `OrbaxCheckpoints(folder)`."""
  if checkpoints is None or hasattr(checkpoints, 'restore'):
    return checkpoints
  return OrbaxCheckpoints(checkpoints)


def flat_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`{'losses.gram.weight': 0.0005, ...}`: every field of `config` as a JSON value."""
  out = {}

  def walk(node: Any, prefix: str) -> None:
    for key, value in node.items():
      if isinstance(value, dict) and key != 'layers':
        walk(value, f'{prefix}{key}.')
      else:
        out[f'{prefix}{key}'] = json.loads(json.dumps(value, default=str, sort_keys=True))

  walk(config.to_dict(), '')
  return out


def pair_digests(layout: Any, per_pair: Sequence[bytes]) -> list[str]:
  """A short SHA-256 of each pair's bytes, for every pair of the batch (`layout` gathers the
  digests of every process's pairs)."""
  words = np.stack([np.frombuffer(hashlib.sha256(b).digest(), np.uint32) for b in per_pair]).astype(
    np.uint32
  )
  every = layout.gather(layout.shard(words))
  return [row.tobytes().hex()[:16] for row in np.asarray(every, np.uint32)]


def fingerprint(
  config: ml_collections.ConfigDict, layout: Any, inputs: dict[str, Sequence[bytes]]
) -> dict[str, Any]:
  """What identifies a run: its config, its number of pairs (padded for the devices), and a
  digest of each pair's inputs (`{label: [bytes of pair i]}` for this process's pairs)."""
  return {
    'config': flat_config(config),
    'pairs': [sum(layout.counts), layout.local_size * len(layout.counts)],
    'inputs': {label: pair_digests(layout, data) for label, data in inputs.items()},
  }


def fingerprint_differences(
  saved: dict[str, Any], now: dict[str, Any], names: Sequence[str] | None = None
) -> list[str]:
  """What differs between two fingerprints, one phrase each ([] for the same run)."""
  out = []
  old_config, new_config = saved.get('config', {}), now['config']
  for key in sorted(set(old_config) | set(new_config)):
    if old_config.get(key) != new_config.get(key):
      out.append(
        f'config.{key} is {new_config.get(key)!r}, the checkpoint has {old_config.get(key)!r}'
      )
  if saved.get('pairs') != now['pairs']:
    was, is_ = saved.get('pairs') or ['?', '?'], now['pairs']
    out.append(
      f'{is_[0]} pair(s) padded to {is_[1]} for the devices, the checkpoint has {was[0]} '
      f'padded to {was[1]}'
    )
    return out
  old_inputs = saved.get('inputs', {})
  for label in sorted(set(old_inputs) | set(now['inputs'])):
    old, new = old_inputs.get(label), now['inputs'].get(label)
    if old is None or new is None:
      out.append(f'{label} {"not given" if new is None else "given"}, unlike the checkpoint')
      continue
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if changed:
      which = [names[i] if names and i < len(names) else str(i) for i in changed]
      out.append(f'other {label} for pair(s) {", ".join(which)}')
  return out


def run_fingerprint(run: Any) -> dict[str, Any]:
  """`fingerprint` of an `engine.Stylization`: its config and each pair's inputs."""
  pairs = range(run.contents.shape[0])
  styles = run.pair_styles
  data = {
    'contents': [np.asarray(run.originals[i]).tobytes() for i in pairs],
    'styles': [
      b''.join(np.asarray(im).tobytes() for im in images) + np.asarray(w).tobytes()
      for images, w in zip(styles.images, styles.weights, strict=True)
    ],
    'term weights': [
      b''.join(np.asarray(w[i], np.float32).tobytes() for w in run.term_weights.values())
      for i in pairs
    ],
  }
  if run.init_images is not None:
    data['init_images'] = [np.asarray(run.init_images[i]).tobytes() for i in pairs]
  for name, g in run.guides.items():
    data[f'guides[{name!r}]'] = [np.asarray(g[i]).tobytes() for i in pairs]
  return fingerprint(run.config, run.layout, data)
