"""Step time of a padded batch of contents of different sizes against an equal-size batch of the
bucket's size (docs/benchmarks.md, "Padded batches").

    python scripts/benchmark_buckets.py --heights 170,171,165,168 --width 256
"""

import json

from absl import app, flags, logging

from nst_jax.io import weights
from nst_jax.lab import buckets_bench
from nst_jax.run import config as config_lib

_HEIGHTS = flags.DEFINE_list('heights', ['170', '171', '165', '168'], "Contents' heights.")
_WIDTH = flags.DEFINE_integer('width', 256, "Contents' width (their longest side).")
_OPTIMIZER = flags.DEFINE_enum('optimizer', 'adam', ['adam', 'lbfgs'], 'Optimizer.')
_CHUNK_SIZE = flags.DEFINE_integer('chunk_size', 2, 'Steps per timed chunk.', lower_bound=1)
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Interleaved rounds (A B A B).', lower_bound=1)
_OUTPUT = flags.DEFINE_string('output', 'benchmark_buckets.json', 'Where to write the results.')


def main(argv: list[str]) -> None:
  del argv
  config = config_lib.default_config()
  config.image_size = _WIDTH.value
  config.optim.name = _OPTIMIZER.value
  config.schedule.chunk_size = _CHUNK_SIZE.value
  network = weights.load_vgg19(config.network.weights, pooling=config.network.pooling)
  heights = [int(h) for h in _HEIGHTS.value]
  result = buckets_bench.compare(heights, _WIDTH.value, config, network, _ROUNDS.value)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(result, f, indent=2)
  logging.info(
    'padded batch %s x %d: %.3f s per step; equal batch of %dx%d: %.3f s; ratio %.3f (median of '
    '%d interleaved rounds)',
    heights,
    _WIDTH.value,
    result['step_s']['padded'],
    max(heights),
    _WIDTH.value,
    result['step_s']['equal'],
    result['ratio'],
    _ROUNDS.value,
  )
  print(json.dumps({k: result[k] for k in ('step_s', 'ratio', 'cost')}))


if __name__ == '__main__':
  app.run(main)
