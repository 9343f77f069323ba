r"""The presets' balance: style and content ratios of each preset at several sizes.

  python scripts/balance.py --presets default,fast,grid,sliced,seed --sizes 128,256,512 \
    --output_dir docs/quality/balance

For each preset in configs/ (its own step budget) and each size, the held-out pairs of
nst_jax/lab/balance.py run as one batch; each saved result is scored by the evaluation
objective's style ratio (the result's Gram style term over the content photograph's: 1 = no
style) and content ratio (its content term over the style image's: 1 = no content left).
Balanced: style <= 0.35 and content <= 0.5. Writes balance.json and balance.md (the table) into
--output_dir. `--overrides field=value,...` changes every preset (for quick looks).
"""

import pathlib

from absl import flags

from nst_jax.app import script
from nst_jax.errors import ConfigError
from nst_jax.lab import balance

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
_PRESETS = flags.DEFINE_list('presets', ['default', 'fast'], 'Preset names in configs/.')
_SIZES = flags.DEFINE_list('sizes', ['128', '256', '512'], 'Longest sides, in pixels.')
_OUTPUT = flags.DEFINE_string('output_dir', 'out/balance', 'Where balance.json/.md go.')
_OVERRIDES = flags.DEFINE_list('overrides', [], 'field=value changes for every preset.')
_TUNING = flags.DEFINE_bool('tuning_pairs', False, 'Run the tuning pairs, not the held-out ones.')
_NUM_PAIRS = flags.DEFINE_integer('num_pairs', 0, 'Only the first N pairs (0: all of them).')


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  sizes = [int(s) for s in _SIZES.value]
  balance.check_sizes(sizes)
  presets = {name: CONFIGS / f'{name}.py' for name in _PRESETS.value}
  pairs = balance.TUNING_PAIRS if _TUNING.value else balance.PAIRS
  if _NUM_PAIRS.value < 0:
    raise ConfigError(f'--num_pairs={_NUM_PAIRS.value} must be >= 0')
  pairs = pairs[: _NUM_PAIRS.value or None]
  records = []
  for size in sizes:  # Smallest first; the files are rewritten after each preset and size.
    for name, path in presets.items():
      records += balance.measure({name: path}, [size], pairs, overrides=_OVERRIDES.value)
      balance.write(records, _OUTPUT.value)
  print(balance.markdown(records))


if __name__ == '__main__':
  script.run(main)
