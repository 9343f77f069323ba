"""What a run reports: the loss history, the progress a callback sees between chunks, the result."""

import dataclasses
from typing import NamedTuple

import jax
import numpy as np


@dataclasses.dataclass
class History:
  """Loss values of a run, all scales concatenated.

  Attributes:
    total: (num_steps_all, B) the objective before each step.
    evaluations: (num_steps_all, B) int32, the objective evaluations (each with its gradient) each
      step took: 1 a step for Adam; for L-BFGS the line search's trials, plus 1 where the
      gradient at the step's start was not cached (the first step of a scale).
    scale: (num_steps_all,) the scale index (0 = coarsest) of each step.
    term_steps: (K,) steps done (all scales) when the terms were evaluated: every chunk's end,
      so the last entry is the final image.
    terms: `{name: (K, B)}` unweighted value of each loss term.
    term_totals: (K, B) the objective at those same points.
    pair_steps: (num_scales, B) steps each pair took at each scale: fewer than the scale's
      steps where the pair stopped on a plateau (`config.schedule.plateau_tolerance`).
  """

  total: np.ndarray
  evaluations: np.ndarray
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
      evaluations=self.evaluations[:, :count],
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
    evaluations: (B,) objective evaluations so far, all scales (see `History.evaluations`).
  """

  scale: int
  num_scales: int
  step: int
  num_steps: int
  total: np.ndarray
  terms: dict[str, np.ndarray]
  images: jax.Array
  evaluations: np.ndarray | None = None


class HistoryLog:
  """Collects each chunk's losses; `history()` concatenates them."""

  def __init__(self):
    self.totals, self.scales, self.term_steps, self.values, self.term_totals = [], [], [], [], []
    self.pair_steps, self.counts = [], []

  def add(
    self, scale: int, totals: np.ndarray, total: np.ndarray, values: dict, counts: np.ndarray
  ) -> None:
    """A chunk: the objective (steps, B) before each step, the objective (B,) and terms
    `{name: (B,)}` at its end, and each step's evaluations (steps, B)."""
    self.totals.append(totals)
    self.counts.append(counts)
    self.scales.append(np.full(len(totals), scale))
    self.term_steps.append(sum(map(len, self.totals)))
    self.values.append(values)
    self.term_totals.append(total)

  def evaluations(self) -> np.ndarray:
    """(B,) the objective evaluations so far."""
    return np.sum([c.sum(axis=0) for c in self.counts], axis=0)

  def end_scale(self, pair_steps: np.ndarray) -> None:
    self.pair_steps.append(pair_steps)

  def history(self) -> History:
    return History(
      total=np.concatenate(self.totals),
      evaluations=np.concatenate(self.counts),
      scale=np.concatenate(self.scales),
      term_steps=np.asarray(self.term_steps),
      terms={name: np.stack([v[name] for v in self.values]) for name in self.values[0]},
      term_totals=np.stack(self.term_totals),
      pair_steps=np.stack(self.pair_steps),
    )
