r"""Stylizes content images with one style image or a blend of several.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_swirls.png
  python scripts/stylize.py --content_dir photos/ --style a.jpg,b.jpg --style_weights 0.7,0.3 \
    --output out/ --config configs/fast.py --config.schedule.num_steps=200 --workdir runs/blend

Several content images (`--content a.jpg,b.jpg` or `--content_dir DIR`) run as vmapped batches,
one per output size (contents of the same size after resizing to config.image_size, aspect ratio
kept). `--output` is then a folder (`out/`: one `out/<content>.png` each) or a pattern with
`{content}` (the content file's name without extension) and/or `{index}`, e.g.
`out/{content}_swirls.jpg`; with a single content it may also be a file name.

Masks (docs/masks.md): `--content_mask labels.png --mask_colors '#000000,#ffffff'` paints the
pixels of colour i with style i (other colours keep the content only); a greyscale
`--content_mask` with no colours is a strength map (white: full style, black: none);
`--style_masks` (one per style) take region i from the part of a style that has colour i.

`--save_every N` writes `<output>.stepNNNN.<ext>` next to each output at the first chunk boundary
(every config.schedule.chunk_size steps) at or after each multiple of N steps. `--workdir DIR`
receives config.json, run.json, history.jsonl (losses), loss.png (their curves), TensorBoard
summaries (`tensorboard --logdir DIR`) and checkpoints (every `--checkpoint_every` steps, default
100, at each scale's end and on Ctrl-C): the same command run again resumes exactly where it
stopped; `--restart` starts over (docs/research.md).

Ctrl-C saves `<output>.interrupted.png` (with --workdir, a checkpoint too) and prints how to
resume (without a workdir: `--init_image`, which sets config.init.kind='image'); exit code 130.
A non-finite loss saves `<output>.last_finite.png`; exit code 1. Bad flags, configs or inputs
print one `error:` line; exit code 2.
"""

import pathlib

from absl import flags

from nst_jax.app import cli, hosts, regions, script, workdir

_CONFIG = script.config_flag(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py')
_CONTENT = flags.DEFINE_list('content', [], 'Content image file(s), comma-separated.')
_CONTENT_DIR = flags.DEFINE_string('content_dir', None, 'Folder of content images (all of them).')
_STYLE = flags.DEFINE_list('style', None, 'Style image file(s), comma-separated.', required=True)
_STYLE_WEIGHTS = flags.DEFINE_list(
  'style_weights', None, 'Blend weight of each style image (default: equal).'
)
_OUTPUT = flags.DEFINE_string(
  'output', None, 'Output file, or folder / {content} pattern for several contents.', required=True
)
_INIT_IMAGE = flags.DEFINE_list(
  'init_image', [], 'Start image(s), one per content (e.g. to resume); sets config.init.kind=image.'
)
_SAVE_EVERY = flags.DEFINE_integer('save_every', 0, 'Write intermediate images every N steps.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 0, 'Most contents per batch; 0: no limit.')
regions.define_flags()
hosts.define_multihost_flags()
workdir.define_flags()


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  dist = hosts.setup_devices(**hosts.multihost_flag_values())
  cli.stylize_files(
    script.get_config(_CONFIG),
    contents=_CONTENT.value,
    content_dir=_CONTENT_DIR.value,
    styles=_STYLE.value,
    style_weights=_STYLE_WEIGHTS.value,
    output=_OUTPUT.value,
    init_images=_INIT_IMAGE.value,
    save_every=_SAVE_EVERY.value,
    workdir=workdir.from_flags(),
    batch_size=_BATCH_SIZE.value,
    masks=regions.from_flags(),
    dist=dist,
  )


if __name__ == '__main__':
  script.run(main)
