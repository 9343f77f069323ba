r"""The seed: the classic TensorFlow style-transfer tutorial this project started from.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_waves.png \
    --output out/astronaut_seed.png --config configs/seed.py

Starts from uniform noise, normalises the loss terms and adds an L1 total-variation
('denoising') term, optimised with Adam. The normalisation divides each term's weight by the
term's reference value for the pair: how far apart the content photograph and the style image are
under it. So the weights are relative importances: content 1.5 : style 1 asks for a result about
as far from "no content left" as from "no style at all", whatever the pair and the image size.
(The tutorial divided each term by its own current value, which pulls hardest on whichever term
nears zero: the result came back as the photograph, or as texture alone, depending on the pair.)

Measured with the classic Gatys objective (configs/default.py) on the saved images, on four pairs
not used for tuning, with these 1000 steps: the style term ends at 13-26% of the content
photograph's own at 128 px and 10-22% at 256 px; the content term at 9-24% of the style image's (128
px) and 10-22% (256 px): stylized, content kept. About 8 s per 100 steps at 128 px and 20-28 s at
256 px on 2 CPU cores. On the balance table's four held-out pairs it is balanced at 128, 256 and
512 px too (512 px: style 10-17%, content 10-24%; 106 s per 100 steps). See docs/quality.md,
"The seed's recipe" and "Balance at any size".
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.init.kind = 'noise'
  config.losses.content.weight = 1.5
  config.losses.gram.weight = 1.0
  config.losses.tv.weight = 0.1
  config.losses.tv.norm = 'l1'
  config.optim.name = 'adam'
  config.optim.learning_rate = 0.02
  config.schedule.num_steps = 1000
  return config
