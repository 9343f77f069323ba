r"""Stylizes every content image with every style image and composes the results into a grid.

  python scripts/style_grid.py --contents samples/astronaut.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_mosaic.png,samples/style_waves.png \
    --output out/grid.png

All pairs run together as one vmapped batch (one batch per content size, if the contents' aspect
ratios differ), sharded over the available devices. The grid has a blank top-left corner, the
styles as column headers, the contents as row headers and the results as cells, all fitted
without distortion into equal cells (`--cell_size`, default: the largest result) with white
gutters (`--gutter` pixels). Every result is also written as
`grid_cells/<content>__<style>.png` next to the grid. Masks as in scripts/stylize.py, one
`--content_mask` per content row: a strength map, or one colour of `--mask_colors` (each cell has
one style), or several colours with `--style_masks`. Exit codes as in scripts/stylize.py.
"""

import pathlib

from absl import flags

from nst_jax.app import cli, hosts, regions, script, workdir

_CONFIG = script.config_flag(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'grid.py')
_CONTENTS = flags.DEFINE_list(
  'contents', None, 'Content image files, comma-separated.', required=True
)
_STYLES = flags.DEFINE_list('styles', None, 'Style image files, comma-separated.', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Grid image file, e.g. grid.png.', required=True)
_CELL_SIZE = flags.DEFINE_integer('cell_size', 0, 'Cell side in pixels; 0: the largest result.')
_GUTTER = flags.DEFINE_integer('gutter', 8, 'White space between cells, in pixels.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 0, 'Most pairs per batch; 0: no limit.')
regions.define_flags('content row')
hosts.define_multihost_flags()
workdir.define_flags()


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  dist = hosts.setup_devices(**hosts.multihost_flag_values())
  cli.style_grid_files(
    script.get_config(_CONFIG),
    contents=_CONTENTS.value,
    styles=_STYLES.value,
    output=_OUTPUT.value,
    cell_size=_CELL_SIZE.value,
    gutter=_GUTTER.value,
    workdir=workdir.from_flags(),
    batch_size=_BATCH_SIZE.value,
    masks=regions.from_flags(),
    dist=dist,
  )


if __name__ == '__main__':
  script.run(main)
