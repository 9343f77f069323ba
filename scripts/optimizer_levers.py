r"""Optimizer settings compared in objective evaluations, which a busy machine does not distort.

  p=configs/compare/pastiche.py
  python scripts/optimizer_levers.py --contents c1.png,c2.png --styles s1.png,s2.png \
    --configs "$p,$p@optim.line_search=backtracking" \
    --budget 150 --targets 12057,87262 --output out/levers.json

Each config (`FILE[@field=value...]`) runs on each pair (content i with style i, each file at the
size to run) in this process until --budget objective evaluations are spent (a coarser scale's
evaluations counted by their share of the final size's pixels), recording after every step the
evaluations so far and the objective reached (nst_jax.lab.levers). With --targets (one objective
per pair, e.g. pastiche's best saved image from scripts/quality_curve.py), it reports the
evaluations each config needed to reach them; without, the first config's objective at half the
budget. Writes the report as JSON to --output and prints a table.
"""

from absl import flags

from nst_jax.app import script
from nst_jax.errors import ConfigError
from nst_jax.lab import levers

_CONTENTS = flags.DEFINE_list('contents', None, 'Content image files.', required=True)
_STYLES = flags.DEFINE_list('styles', None, 'Style image files, one per content.', required=True)
_CONFIGS = flags.DEFINE_list(
  'configs', ['configs/compare/pastiche.py'], 'Configs: FILE[@field=value...].'
)
_BUDGET = flags.DEFINE_float('budget', 100.0, 'Objective evaluations per run.')
_TARGETS = flags.DEFINE_list('targets', [], 'One target objective per pair (default: see above).')
_OUTPUT = flags.DEFINE_string('output', 'out/levers.json', 'The JSON report.')


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  if len(_CONTENTS.value) != len(_STYLES.value):
    raise ConfigError('give as many --styles as --contents (pair i is content i with style i)')
  try:
    targets = [float(t) for t in _TARGETS.value]
  except ValueError:
    raise ConfigError(f'--targets must be numbers, got {_TARGETS.value}') from None
  report = levers.study(
    _CONFIGS.value,
    list(zip(_CONTENTS.value, _STYLES.value, strict=True)),
    budget=_BUDGET.value,
    targets=targets,
    output=_OUTPUT.value,
  )
  print(levers.table(report))


if __name__ == '__main__':
  script.run(main)
