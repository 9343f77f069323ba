"""Peak memory per megapixel of a stylization, each case in a process of its own
(`scripts/benchmark.py --suite=memory`).

Every case (a size, a style loss, an optimizer, `config.memory.remat` and
`config.memory.tile_size`; 'auto' and 0 let the memory plan choose, which the output records)
runs in a process of its own, on one pair of synthetic images with the default config otherwise,
and without the persistent compilation cache. Each process prepares the batch (the memory plan
checks the size before compiling), computes the targets, compiles one chunk of `steps` steps and
runs it `repeats` times:

* peak_bytes: the device's `memory_stats()['peak_bytes_in_use']` where the backend has it, else
  the process's peak resident memory (`ru_maxrss`, which includes the Python runtime and the
  compiler); base_bytes: the same just before preparing (runtime, weights and input images
  loaded). per_mp: (peak - base) / megapixels; peak_per_mp: peak / megapixels; the table's
  slope: (peak - the previous size's peak) / the megapixels added, in which fixed costs cancel.
* estimate_bytes: `nst_jax.run.memory`'s prediction (its runtime part included), for comparison.
* step_s: median over the chunks of (chunk time - one forward evaluation) / steps (a chunk ends
  with an evaluation; `subtract_forward=False` skips timing it, for very large sizes);
  targets_s: the targets and start state; compile_s: compilation of the chunk.
* program_bytes: what XLA allocates to run the compiled chunk (`memory_analysis()`: temporaries,
  arguments and outputs, less donated buffers): the run's own footprint on any backend, without
  the compiler and runtime that a CPU's resident peak includes.
* relative_to_gram: each style loss's step_s and (peak - base) / those of 'gram' at the same
  size, optimizer, remat and tiles (when the cases include gram). Loss names that this
  checkout does not know fail their own case only, with the error recorded.
"""

import resource
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import nst_jax
from nst_jax.errors import ConfigError
from nst_jax.io import caches, weights
from nst_jax.lab import fresh_process, samples
from nst_jax.run import engine, memory


def device_seconds(fn: Any, *args: Any) -> float:
  """Wall time of `fn(*args)`, its results on the device."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def compiled_bytes(compiled: Any) -> int:
  """What XLA allocates to run a compiled program: arguments, temporaries and outputs, less the
  donated buffers that outputs reuse."""
  m = compiled.memory_analysis()
  return (
    m.argument_size_in_bytes + m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
  )


def _memory_in_use(device: Any) -> tuple[int, int]:
  """(bytes in use, peak bytes) of the device where the backend reports them, else this
  process's resident and peak resident memory (resident 0 where /proc is missing)."""
  stats = device.memory_stats() if device.platform != 'cpu' else None
  if stats and 'peak_bytes_in_use' in stats:
    return int(stats['bytes_in_use']), int(stats['peak_bytes_in_use'])
  return memory.resident_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stripe_regions(count: int, num_pairs: int, size: int, styles: list) -> dict[str, Any]:
  """`stylize`'s mask options for `count` vertical stripes, stripe r painted with style r (the
  first `count` styles, repeated if there are fewer); nothing for 0."""
  if not count:
    return {}
  stripes = np.arange(size) * count // size
  mask = (stripes[None, :, None] == np.arange(count)).astype(np.float32)
  guides = np.broadcast_to(mask, (num_pairs, size, size, count))
  chosen = [styles[r % len(styles)] for r in range(count)]
  return {'styles': chosen, 'guides': {'regions': guides}, 'style_weights': np.ones(count)}


def run_case(settings: dict[str, Any]) -> dict[str, Any]:
  """One case, in this process: see the module docstring."""
  caches.disable_compilation_cache()  # The compiler's memory and time are part of a case.
  device = jax.devices()[0]
  config = nst_jax.default_config()
  config.image_size = settings['size']
  config.optim.name = settings['optimizer']
  if settings['style_loss'] not in config.losses:
    raise ConfigError(
      f'config.losses has no loss {settings["style_loss"]!r}; it has: {", ".join(config.losses)}'
    )
  config.losses.gram.weight = 0.0
  config.losses[settings['style_loss']].weight = 5e-4
  config.memory.remat = settings['remat']
  config.memory.tile_size = settings['tile_size']
  config.memory.budget_gb = settings['memory_gb']
  config.schedule.chunk_size = settings['steps']
  config.schedule.num_steps = 2**30
  network = weights.load_vgg19(config.network.weights, pooling=config.network.pooling)
  rng = np.random.default_rng(settings['seed'])
  content, style = (samples.smooth_image(rng, config.image_size) for _ in range(2))
  masked = stripe_regions(settings.get('regions', 0), 1, config.image_size, [style])
  styles = masked.pop('styles', [style])
  base, _ = _memory_in_use(device)
  start = time.perf_counter()
  prepared = engine.prepare(content[None], styles, config, network=network, **masked)
  del content, style, styles
  state = prepared.start_state(0)
  jax.block_until_ready(state)
  targets_s = time.perf_counter() - start
  program, params = prepared.program, prepared.params
  weights_ = prepared.pair_weights(0, state)
  never = jnp.int32(2**30)
  start = time.perf_counter()
  run_chunk = program.run_chunk.lower(params, state, weights_, never).compile()
  compile_s = time.perf_counter() - start
  keys = program.step_keys(state)
  if settings['subtract_forward']:
    images = program.images(state)
    forward = program.evaluate.lower(
      params, images, state.targets, weights_, keys, state.guides
    ).compile()
  chunk_s, forward_s = [], []
  for _ in range(settings['repeats']):
    begin = time.perf_counter()
    state, _, (total, _) = jax.block_until_ready(run_chunk(params, state, weights_, never))
    chunk_s.append(time.perf_counter() - begin)
    if settings['subtract_forward']:
      keys = program.step_keys(state)
      images = program.images(state)
      forward_s.append(
        device_seconds(forward, params, images, state.targets, weights_, keys, state.guides)
      )
  _, peak = _memory_in_use(device)
  steps = settings['steps']
  step_s = np.asarray(chunk_s) - (np.asarray(forward_s) if forward_s else 0.0)
  megapixels = prepared.sizes[-1][0] * prepared.sizes[-1][1] / 1e6
  plan = prepared.plan
  return {
    **settings,
    'remat': plan.remat,
    'tile_size': plan.tiling.tile_size if plan.tiling else -1,
    'windows': plan.tiling.windows(prepared.sizes[-1]) if plan.tiling else 1,
    'device': f'{device.platform}: {device.device_kind}',
    'megapixels': megapixels,
    'base_bytes': base,
    'peak_bytes': peak,
    'per_mp': (peak - base) / megapixels,
    'peak_per_mp': peak / megapixels,
    'program_bytes': compiled_bytes(run_chunk),
    'estimate_bytes': plan.estimate.total,
    'estimate_parts': plan.estimate.parts,
    'targets_s': targets_s,
    'compile_s': compile_s,
    'chunk_times_s': chunk_s,
    'forward_times_s': forward_s,
    'step_s': float(np.median(step_s)) / steps,
    'finite': bool(np.isfinite(np.asarray(total)).all()),
  }


def _relative_to_gram(cases: list[dict[str, Any]]) -> None:
  """Adds each case's step time and memory relative to the Gram case of the same settings."""
  key = lambda c: (c['size'], c['optimizer'], c['remat'], c['tile_size'], c.get('regions', 0))  # noqa: E731
  gram = {key(c): c for c in cases if c['style_loss'] == 'gram' and 'error' not in c}
  for case in cases:
    base = gram.get(key(case))
    if base is None or 'error' in case:
      continue
    case['relative_to_gram'] = {
      'step_s': case['step_s'] / base['step_s'],
      'memory': (case['peak_bytes'] - case['base_bytes'])
      / (base['peak_bytes'] - base['base_bytes']),
    }


def _relative_to_no_regions(cases: list[dict[str, Any]]) -> None:
  """Adds each masked case's step time and memory relative to the same case without a mask."""
  key = lambda c: (c['size'], c['style_loss'], c['optimizer'], c['remat'], c['tile_size'])  # noqa: E731
  plain = {key(c): c for c in cases if not c.get('regions') and 'error' not in c}
  for case in cases:
    base = plain.get(key(case))
    if base is None or 'error' in case or not case.get('regions'):
      continue
    case['relative_to_no_regions'] = {
      'step_s': case['step_s'] / base['step_s'],
      'memory': (case['peak_bytes'] - case['base_bytes'])
      / (base['peak_bytes'] - base['base_bytes']),
      'peak': case['peak_bytes'] / base['peak_bytes'],
      'program': case['program_bytes'] / base['program_bytes'],
    }


def table(results: dict[str, Any]) -> str:
  """One table per setting: sizes as rows; per megapixel, peak and step time as columns."""
  lines = [f'device: {results["device"]}   steps per chunk: {results["steps"]}']
  groups: dict[tuple, list[dict[str, Any]]] = {}
  for case in results['cases']:
    setting = (
      case['style_loss'],
      case['optimizer'],
      case.get('remat'),
      case.get('tile_size'),
      case.get('regions', 0),
    )
    groups.setdefault(setting, []).append(case)
  for (loss, optimizer, remat, tile, regions), cases in groups.items():
    lines += [
      '',
      f'style_loss={loss} optimizer={optimizer} remat={remat} tile_size={tile} regions={regions}',
      f'{"size":>6} {"MP":>6} {"GB/MP":>7} {"slope":>7} {"peak GB":>8} {"peak/MP":>8}'
      f' {"step s":>8} {"estimate GB":>12} {"windows":>8} {"vs gram/R=0":>16}',
    ]
    previous = None
    for c in sorted(cases, key=lambda c: c['size']):
      if 'error' in c:
        lines.append(f'{c["size"]:>6} error: {c["error"]}')
        continue
      relative = c.get('relative_to_no_regions') or c.get('relative_to_gram')
      versus = f'{relative["step_s"]:.2f}x t {relative["memory"]:.2f}x m' if relative else ''
      # GB per megapixel added since the previous size: the fixed costs cancel.
      slope = float('nan')
      if previous is not None:
        added = c['megapixels'] - previous['megapixels']
        slope = (c['peak_bytes'] - previous['peak_bytes']) / added / 1e9
      previous = c
      lines.append(
        f'{c["size"]:>6} {c["megapixels"]:>6.2f} {c["per_mp"] / 1e9:>7.2f} {slope:>7.2f}'
        f' {c["peak_bytes"] / 1e9:>8.2f} {c["peak_per_mp"] / 1e9:>8.2f} {c["step_s"]:>8.2f}'
        f' {c["estimate_bytes"] / 1e9:>12.2f} {c["windows"]:>8} {versus:>16}'
      )
  return '\n'.join(lines)


def measure(cases: list[dict[str, Any]]) -> dict[str, Any]:
  """Runs every case (`run_case`'s settings) in a process of its own; adds each one's cost
  relative to Gram's."""
  device = jax.devices()[0]
  results: dict[str, Any] = {
    'suite': 'memory',
    'device': f'{device.platform}: {device.device_kind}',
    'jax': jax.__version__,
    'cases': [],
  }
  for settings in cases:
    results['cases'].append(fresh_process.run_case(__name__, settings))
  _relative_to_gram(results['cases'])
  _relative_to_no_regions(results['cases'])
  return results
