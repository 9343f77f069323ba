"""What a run reports: the loss history, the progress a callback sees between chunks, the result."""

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np


@dataclasses.dataclass
class History:
  """Loss values of a run, all scales concatenated.

  Attributes:
    total: (num_steps_all, B) the objective before each step.
    scale: (num_steps_all,) the scale index (0 = coarsest) of each step.
    term_steps: (K,) steps done (all scales) when the terms were evaluated: every chunk's end,
      so the last entry is the final image.
    terms: `{name: (K, B)}` unweighted value of each loss term.
    term_totals: (K, B) the objective at those same points.
    pair_steps: (num_scales, B) steps each pair took at each scale: fewer than the scale's
      steps where the pair stopped on a plateau (`config.schedule.plateau_tolerance`).
  """

  total: np.ndarray
  scale: np.ndarray
  term_steps: np.ndarray
  terms: dict[str, np.ndarray]
  term_totals: np.ndarray
  pair_steps: np.ndarray

  def first_pairs(self, count: int) -> 'History':
    """The history of the first `count` pairs only."""
    return dataclasses.replace(
      self,
      total=self.total[:, :count],
      terms={name: values[:, :count] for name, values in self.terms.items()},
      term_totals=self.term_totals[:, :count],
      pair_steps=self.pair_steps[:, :count],
    )


class StylizeResult(NamedTuple):
  """images: (B, H, W, 3) float32 in [0, 1]; history: the losses over the run."""

  images: np.ndarray
  history: History


class Progress(NamedTuple):
  """What a progress callback receives between chunks.

  Attributes:
    scale: index of the current scale (0 = coarsest); num_scales: how many there are.
    step: steps done at this scale; num_steps: steps this scale runs.
    total: (B,) objective of the current images; terms: `{name: (B,)}` unweighted term values.
    images: (B, h, w, 3) current images at this scale (the iterate average, if enabled).
    step_size: (B,) each pair's last step size: the line search's (L-BFGS), else the learning
      rate; None where unknown (an optax transformation of the caller's own).
  """

  scale: int
  num_scales: int
  step: int
  num_steps: int
  total: np.ndarray
  terms: dict[str, np.ndarray]
  images: jax.Array
  step_size: np.ndarray | None = None


class HistoryLog:
  """Collects each chunk's losses; `history()` concatenates them."""

  def __init__(self):
    self.totals, self.scales, self.term_steps, self.values, self.term_totals = [], [], [], [], []
    self.pair_steps = []

  def add(self, scale: int, totals: np.ndarray, total: np.ndarray, values: dict) -> None:
    self.totals.append(totals)
    self.scales.append(np.full(len(totals), scale))
    self.term_steps.append(sum(map(len, self.totals)))
    self.values.append(values)
    self.term_totals.append(total)

  def end_scale(self, pair_steps: np.ndarray) -> None:
    self.pair_steps.append(pair_steps)

  def add_chunk(
    self, scale: int, before: int, outputs: Any, gather: Any
  ) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
    """Adds a chunk from `Program.run_chunk`'s `outputs`, `before` being the steps done at the
    scale before it, and `gather` (`PairLayout.gather`) bringing the real pairs to the host.

    Returns:
      The steps done at the scale, and the objective (B,) and terms `{name: (B,)}` at the end.
    """
    state, totals, (total, values) = outputs
    done = int(state.step)
    total, values = gather(total), {name: gather(v) for name, v in values.items()}
    self.add(scale, gather(totals, axis=1)[: done - before], total, values)
    return done, total, values

  def to_json(self) -> dict[str, Any]:
    """Everything logged so far as JSON values (floats exactly), for a checkpoint."""
    return {
      'totals': [np.asarray(t, np.float64).tolist() for t in self.totals],
      'scales': [np.asarray(s).tolist() for s in self.scales],
      'term_steps': [int(s) for s in self.term_steps],
      'values': [
        {k: np.asarray(v, np.float64).tolist() for k, v in d.items()} for d in self.values
      ],
      'term_totals': [np.asarray(t, np.float64).tolist() for t in self.term_totals],
      'pair_steps': [np.asarray(p).tolist() for p in self.pair_steps],
    }

  @classmethod
  def from_json(cls, saved: dict[str, Any]) -> 'HistoryLog':
    """The log that `to_json` saved."""
    log = cls()
    floats = lambda x: np.asarray(x, np.float64).astype(np.float32)  # noqa: E731
    log.totals = [floats(t).reshape(len(t), -1) for t in saved['totals']]
    log.scales = [np.asarray(s, int) for s in saved['scales']]
    log.term_steps = list(saved['term_steps'])
    log.values = [{k: floats(v) for k, v in d.items()} for d in saved['values']]
    log.term_totals = [floats(t) for t in saved['term_totals']]
    log.pair_steps = [np.asarray(p, np.int32) for p in saved['pair_steps']]
    return log

  def history(self, unfinished: np.ndarray | None = None) -> History | None:
    """Everything logged, or None before the first chunk. `unfinished`: (B,) each pair's steps
    at a scale not ended (a run stopped part-way), counted in `pair_steps` as its last row."""
    if not self.totals:
      return None
    pair_steps = self.pair_steps if unfinished is None else [*self.pair_steps, unfinished]
    return History(
      total=np.concatenate(self.totals),
      scale=np.concatenate(self.scales),
      term_steps=np.asarray(self.term_steps),
      terms={name: np.stack([v[name] for v in self.values]) for name in self.values[0]},
      term_totals=np.stack(self.term_totals),
      pair_steps=np.stack(pair_steps),
    )
