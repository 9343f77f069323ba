r"""Quality against time: configs and pastiche on the same pairs, each run a whole process.

  python scripts/make_samples.py --out samples
  python scripts/quality_curve.py --contents samples/astronaut.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_waves.png --size 256 \
    --configs configs/compare/pastiche.py,configs/compare/pastiche.py@schedule.num_scales=3 \
    --eval_config configs/compare/pastiche.py --output_dir out/quality \
    [--pastiche_python /tmp/torchenv/bin/python]   # see scripts/pastiche_reference.py

Each config (`FILE[@field=value...]`, its image_size set to --size) runs on each pair (content i
with style i) as `scripts/stylize.py` does for a user, one process per run, saving its image every
--every steps; with --pastiche_python, pastiche 1.6 runs each pair the same way. Runs are
interleaved: pair by pair, the order of the tools turning by one each pair. A saved image's time
is its file's modification time from the moment its process started (interpreter start-up,
imports, weights, targets, compilation and steps all count; scoring comes after). Every saved
image is scored with the evaluation objective (--eval_config; default the classic Gatys
objective, content 1 and Gram 5e-4 unnormalised: nst_jax.lab.evaluation.classic_objective) as
saved (8 bits).

Writes `quality.json` in --output_dir:
  size, eval_config,
  pairs: [{content, style, pastiche: {best, best_step, best_seconds, seconds}}],
  runs: {label: {spec, points: [per pair: [{seconds, step, scale, objective: [value],
                                            evaluations: [count]}]],
                 final, seconds, seconds_per_evaluation: [per pair],
                 seconds_to_first_final: [per pair]   (when it reached the first config's
                                                       final value: a preset's quality),
                 seconds_to_pastiche_best, speedup: [per pair], median_speedup}},
  pastiche: [per pair: [points]], pastiche_seconds_per_evaluation: [per pair],
  equal_times: {seconds: [0, 1, ...], pairs: {label: [per pair: [objective / pastiche's best
                at that time]]}, median: {label: [median over pairs]}}
and `quality.png`: with pastiche, each run's median over pairs of its best saved objective so far
relative to pastiche's best, against seconds; without, the first pair's objective.
"""

import pathlib

from absl import flags

from nst_jax.app import script
from nst_jax.lab import quality

_CONTENTS = flags.DEFINE_list('contents', None, 'Content image files.', required=True)
_STYLES = flags.DEFINE_list('styles', None, 'Style image files, one per content.', required=True)
_CONFIGS = flags.DEFINE_list('configs', ['configs/default.py'], 'Configs: FILE[@field=value...].')
_EVAL = flags.DEFINE_string('eval_config', '', "The evaluation objective; '': the classic one.")
_SIZE = flags.DEFINE_integer('size', 256, 'Final longest side of every run, pixels.')
_EVERY = flags.DEFINE_integer('every', 10, 'Steps between saved images (and chunks).')
_OUTPUT = flags.DEFINE_string('output_dir', 'out/quality', 'Where the JSON and plot go.')
_PASTICHE = flags.DEFINE_string('pastiche_python', None, 'A python with torch and pastiche.')
_PASTICHE_STEPS = flags.DEFINE_integer('pastiche_steps', 400, "pastiche's L-BFGS steps.")


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  report = quality.compare(
    _CONFIGS.value,
    _CONTENTS.value,
    _STYLES.value,
    size=_SIZE.value,
    eval_spec=_EVAL.value,
    output_dir=_OUTPUT.value,
    scripts_dir=str(pathlib.Path(__file__).resolve().parent),
    pastiche_python=_PASTICHE.value,
    pastiche_steps=_PASTICHE_STEPS.value,
    every=_EVERY.value,
  )
  for label, run in report['runs'].items():
    line = f'{label}: final {run["final"]}, {[round(s, 1) for s in run["seconds"]]} s'
    line += (
      f"; reached the first's final in {[round(s, 1) for s in run['seconds_to_first_final']]} s"
    )
    if 'speedup' in run:
      line += f"; x{[round(s, 2) for s in run['speedup']]} faster to pastiche's best"
      line += f' (median x{run["median_speedup"]:.2f})'
    print(line)


if __name__ == '__main__':
  script.run(main)
