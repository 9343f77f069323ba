r"""Quality against time: several configs on the same pairs, scored with one fixed objective.

  python scripts/make_samples.py --out samples
  python scripts/quality_curve.py --contents samples/astronaut.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_waves.png --size 256 \
    --configs configs/pastiche.py,configs/default.py@schedule.num_scales=3 \
    --eval_config configs/pastiche.py --output_dir out/quality \
    [--pastiche_python /tmp/torchenv/bin/python]   # see scripts/pastiche_reference.py

Each config (`FILE[@field=value...]`, its image_size set to --size) runs on each pair (content i
with style i), one pair at a time. After every chunk the current image, as it would be saved
(upsampled to --size while a coarser scale runs, rounded to 8 bits), is scored with the
evaluation objective (--eval_config; default the classic Gatys objective, content 1 and Gram
5e-4 unnormalised: nst_jax.lab.evaluation.classic_objective).
The clock starts when the run does (targets, compilation and steps included; weights loading
and scoring excluded). With --pastiche_python, pastiche 1.6 runs each pair too (its saved images
every 10 steps, scored the same way); its best saved image is each pair's target.

Writes `quality.json` in --output_dir:
  size, eval_config, pairs: [{content, style, pastiche: {best, best_step, best_seconds}}],
  runs: {label: {config, points: [per pair: [{seconds, step, scale, objective: [value]}]],
                 final: [per pair], seconds: [per pair],
                 seconds_to_first_final: [per pair]   (when it reached the first config's
                                                       final value: a preset's quality),
                 seconds_to_pastiche_best: [per pair], speedup: [per pair]}},
  pastiche: [per pair: [{seconds, step, scale, objective}]]
and `quality.png`: the objective (mean over pairs, relative to pastiche's best when it ran)
against seconds, one line per config.
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
_CHUNK = flags.DEFINE_integer('chunk_size', 0, 'Steps between checkpoints; 0: the configs own.')
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
    pastiche_command=(
      [_PASTICHE.value, str(pathlib.Path(__file__).with_name('pastiche_reference.py'))]
      if _PASTICHE.value
      else []
    ),
    pastiche_steps=_PASTICHE_STEPS.value,
    chunk_size=_CHUNK.value,
  )
  for label, run in report['runs'].items():
    line = f'{label}: final {run["final"]}, {[round(s, 1) for s in run["seconds"]]} s'
    line += (
      f"; reached the first's final in {[round(s, 1) for s in run['seconds_to_first_final']]} s"
    )
    if 'speedup' in run:
      line += f"; x{[round(s, 2) for s in run['speedup']]} faster to pastiche's best"
    print(line)


if __name__ == '__main__':
  script.run(main)
