r"""Comparison sheets of the style objectives, and their scores.

  python scripts/compare_methods.py \
    --contents samples/astronaut.png,samples/chelsea.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_mosaic.png,samples/style_ihc.png \
    --output_dir out/compare --size 384

One sheet per style (`<style>.jpg`): the contents as rows, the methods as columns (gram,
gaussian, sliced, nearest_neighbor, hq: see nst_jax/compare.py for each one's config). For each
content, the methods that share a schedule (Gram, Gaussian and sliced) run as one batch, each
pair with its own objective; the others run alone. `results.json` records each result's time and
its scores under the project's evaluation objectives (content MSE, Gram and Gaussian style
losses), and `scores.md` has the tables. `--steps N` runs N steps at every scale instead of the
presets' own (a quick look); `--overrides field=value,...` changes every method's config.
Exit codes as in scripts/stylize.py.
"""

import pathlib

from absl import flags

from nst_jax.app import script
from nst_jax.lab import compare

_CONTENTS = flags.DEFINE_list(
  'contents', None, 'Content image files, comma-separated.', required=True
)
_STYLES = flags.DEFINE_list('styles', None, 'Style image files, comma-separated.', required=True)
_OUTPUT_DIR = flags.DEFINE_string(
  'output_dir', None, 'Folder for the sheets and scores.', required=True
)
_METHODS = flags.DEFINE_list('methods', list(compare.METHODS), 'Methods, in column order.')
_SIZE = flags.DEFINE_integer('size', 384, 'Longest side of the results, in pixels.')
_STEPS = flags.DEFINE_integer('steps', 0, 'If > 0, steps at every scale for every method.')
_OVERRIDES = flags.DEFINE_list('overrides', [], 'field=value changes for every method.')
_SHEET_FORMAT = flags.DEFINE_enum('sheet_format', 'jpg', ['jpg', 'png'], 'Sheet image format.')


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  compare.compare_methods(
    contents=_CONTENTS.value,
    styles=_STYLES.value,
    output_dir=_OUTPUT_DIR.value,
    configs_dir=pathlib.Path(__file__).resolve().parents[1] / 'configs',
    methods=_METHODS.value,
    size=_SIZE.value,
    steps=_STEPS.value,
    overrides=_OVERRIDES.value,
    sheet_format=_SHEET_FORMAT.value,
  )


if __name__ == '__main__':
  script.run(main)
