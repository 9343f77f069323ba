"""The speed suite of `scripts/benchmark.py` (the default, `--suite=speed`): step time, compile
time, FLOPs and FLOP rate of stylization steps on the default device.

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
"""

import dataclasses
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

import nst_jax
from nst_jax.io import weights
from nst_jax.lab import memory_suite, samples
from nst_jax.run import engine


@dataclasses.dataclass(frozen=True)
class Settings:
  """How every case runs: `optimizer` ('adam' or 'lbfgs'), `chunk_size` steps per compiled
  chunk, `repeats` timed chunks after one warm-up, `paired_rounds` rounds of the interleaved
  batching comparison (0 skips it), the reference matmul's `matmul_size` n and the synthetic
  images' `seed`."""

  optimizer: str = 'adam'
  chunk_size: int = 2
  repeats: int = 3
  paired_rounds: int = 5
  matmul_size: int = 4096
  seed: int = 0


def _flops(compiled: Any) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list | tuple):  # Older jax: one dict per device program.
    analysis = analysis[0]
  return float(analysis['flops'])


def _make_matmul(n: int) -> Callable[[], float]:
  """A compiled float32 n^3 matmul at default precision; calling it times one run (seconds)."""
  a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  return lambda: memory_suite.device_seconds(matmul, a, b)


def _case(
  size: int,
  num_pairs: int,
  network: Any,
  rng: np.random.Generator,
  matmul: Callable[[], float],
  regions: int,
  settings: Settings,
) -> tuple[dict[str, Any], Callable[[], float]]:
  """Runs one case; returns its results and `replay`, which times one more chunk (seconds)."""
  config = nst_jax.default_config()
  config.image_size = size
  config.optim.name = settings.optimizer
  config.schedule.chunk_size = settings.chunk_size
  contents = np.stack([samples.smooth_image(rng, size) for _ in range(num_pairs)])
  styles = [samples.smooth_image(rng, size) for _ in range(num_pairs)]  # Pair i uses style i.
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
  for k in range(settings.repeats + 1):  # The first chunk warms up and is not timed.
    begin = time.perf_counter()
    state = jax.block_until_ready(run_chunk(params, state, weights_, never))[0]
    elapsed = time.perf_counter() - begin
    if k:
      # Each chunk also evaluates the objective once at its end: time that forward pass and the
      # reference matmul right after it, under the same load.
      chunk_s.append(elapsed)
      images = program.images(state)
      forward_s.append(
        memory_suite.device_seconds(
          forward, params, images, state.targets, weights_, keys, state.guides
        )
      )
      matmul_s.append(matmul())
  chunk_s = np.asarray(chunk_s)
  step_s = (chunk_s - np.asarray(forward_s)) / config.schedule.chunk_size
  matmul_rate = 2 * settings.matmul_size**3 / np.asarray(matmul_s) / 1e9
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


def _paired_ratios(
  cases: list[dict[str, Any]], replays: list[Callable[[], float]], rounds: int
) -> list[float]:
  """Per-image chunk time of each case / the first case's, median over interleaved rounds."""
  per_image = np.asarray(
    [
      [replay() / case['pairs'] for case, replay in zip(cases, replays, strict=True)]
      for _ in range(rounds)
    ]
  )
  return [float(r) for r in np.median(per_image / per_image[:, :1], axis=0)]


def table(results: dict[str, Any]) -> str:
  """The results as text: one row per case, then the batching ratios."""
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


def measure(
  sizes: Sequence[int], batches: Sequence[int], region_counts: Sequence[int], settings: Settings
) -> dict[str, Any]:
  """Every case (each size, batch size B and region count R) and, per size, each case's per-image
  step time relative to the size's first case (see the module docstring for every figure)."""
  batches = sorted(batches)
  device = jax.devices()[0]
  logging.info('Devices: %s', jax.devices())
  defaults = nst_jax.default_config()
  network = weights.load_vgg19(
    defaults.network.weights,
    pooling=defaults.network.pooling,
    dtype=jnp.dtype(defaults.network.dtype),
  )
  rng = np.random.default_rng(settings.seed)
  matmul = _make_matmul(settings.matmul_size)
  results: dict[str, Any] = {
    'device': f'{device.platform}: {device.device_kind}',
    'host': platform.processor() or platform.machine(),
    'jax': jax.__version__,
    'optimizer': settings.optimizer,
    'chunk_size': settings.chunk_size,
    'repeats': settings.repeats,
    'matmul_n': settings.matmul_size,
    'cases': [],
    'batching': [],
  }
  for size in sizes:
    cases, replays = [], []
    for num_pairs in batches:
      for regions in region_counts:
        logging.info('Benchmarking %d px, B=%d, %d regions', size, num_pairs, regions)
        case, replay = _case(size, num_pairs, network, rng, matmul, regions, settings)
        cases.append(case)
        replays.append(replay)
    results['cases'] += cases
    if settings.paired_rounds and len(cases) > 1:
      logging.info('Interleaved batching comparison at %d px', size)
      for case, ratio in zip(
        cases, _paired_ratios(cases, replays, settings.paired_rounds), strict=True
      ):
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
  return results
