r"""Sweeps one or two config fields over one (content, style) pair, as one batch where it can.

  python scripts/sweep.py --content samples/astronaut.png --style samples/style_swirls.png \
    --sweep 'losses.gram.weight=1e-4,5e-4,2e-3' --sweep 'losses.tv.weight=0,1e-3' \
    --output out/sweep.png --workdir runs/sweep --config configs/fast.py

Cells that differ only in loss weights (`losses.<name>.weight`) run as one batch, compiled once
(each pair has its own weights); a field that changes the compiled program (layers, optimizer,
sizes, steps...) runs each of its values as a separate batch, as the log says. Writes the grid
(columns: the first --sweep's values, rows: the second's), `<output>_cells/<cell>.png`, and the
final terms as `<output>.md` and `<output>.json`; `--workdir` holds the record, TensorBoard
summaries (every cell a pair, tagged by its label) and checkpoints, as for scripts/stylize.py.
Exit codes as in scripts/stylize.py.
"""

import pathlib

from absl import flags

from nst_jax.app import hosts, script, workdir
from nst_jax.lab import sweep

_CONFIG = script.config_flag(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py')
_CONTENT = flags.DEFINE_string('content', None, 'Content image file.', required=True)
_STYLE = flags.DEFINE_string('style', None, 'Style image file.', required=True)
_SWEEP = flags.DEFINE_multi_string(
  'sweep', [], "FIELD=VALUE,VALUE,... (once or twice), e.g. 'losses.gram.weight=1e-4,1e-3'."
)
_OUTPUT = flags.DEFINE_string('output', None, 'Grid image file, e.g. sweep.png.', required=True)
_CELL_SIZE = flags.DEFINE_integer('cell_size', 0, 'Cell side in pixels; 0: the largest result.')
hosts.define_multihost_flags()
workdir.define_flags()


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  dist = hosts.setup_devices(**hosts.multihost_flag_values())
  sweep.sweep_files(
    script.get_config(_CONFIG),
    content=_CONTENT.value,
    style=_STYLE.value,
    sweeps=_SWEEP.value,
    output=_OUTPUT.value,
    cell_size=_CELL_SIZE.value,
    workdir=workdir.from_flags(),
    dist=dist,
  )


if __name__ == '__main__':
  script.run(main)
