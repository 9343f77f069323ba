r"""Measures what the research tools cost (see nst_jax/lab/research_bench.py and docs/research.md).

  python scripts/benchmark_research.py --suite=overheads --size=512 --steps=4 --rounds=3
  python scripts/benchmark_research.py --suite=sweep --rounds=2 \
    --overrides=image_size=128,schedule.num_steps=30,optim.name=adam

overheads: TensorBoard summaries and orbax checkpoints at their default intervals, as fractions
of the step time, at --size px with --config (chunks of --steps steps, --rounds interleaved
rounds). sweep: a 3 x 3 loss-weight sweep as one batch (scripts/sweep.py) against nine
scripts/stylize.py runs, start-up and compilation included, --rounds times in turn. Prints and
writes --output (JSON).
"""

import json
import pathlib
import tempfile

from absl import app, flags

from nst_jax.lab import research_bench
from nst_jax.run import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
_SUITE = flags.DEFINE_enum('suite', 'overheads', ['overheads', 'sweep'], 'What to measure.')
_CONFIG = flags.DEFINE_string('config', str(ROOT / 'configs' / 'default.py'), 'Config file.')
_OVERRIDES = flags.DEFINE_list('overrides', [], 'field=value overrides of the config.')
_SIZE = flags.DEFINE_integer('size', 512, 'overheads: image size (longest side, pixels).')
_STEPS = flags.DEFINE_integer('steps', 4, 'overheads: steps per timed chunk.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Interleaved rounds.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file for the results.')


def main(argv):
  del argv
  if _SUITE.value == 'overheads':
    config = config_lib.from_file(_CONFIG.value)
    for override in _OVERRIDES.value:
      config_lib.apply_override(config, override)
    with tempfile.TemporaryDirectory() as folder:
      result = research_bench.overheads(config, _SIZE.value, _STEPS.value, _ROUNDS.value, folder)
  else:
    result = research_bench.sweep_against_runs(ROOT, _CONFIG.value, _OVERRIDES.value, _ROUNDS.value)
  text = json.dumps(result, indent=2)
  print(text)
  if _OUTPUT.value:
    pathlib.Path(_OUTPUT.value).write_text(text + '\n')


if __name__ == '__main__':
  app.run(main)
