r"""High resolution on one machine: 4096 px, coarse to fine, most steps at low resolution.

  python scripts/stylize.py --content photo.jpg --style samples/style_swirls.png \
    --output out/photo_4096.png --config configs/hires.py --workdir runs/hires

Four scales, 512 -> 1024 -> 2048 -> 4096 px: 100 Adam steps at each coarser scale place the
strokes and colours where steps are cheap, and 20 at full size add the fine detail. Remat is on
(blocks 1-3 are recomputed in the backward pass: about half the memory per megapixel for about a
fifth more time per step), and `tile_size=0` lets the memory plan tile the scales that still do
not fit (at 4096 px on a 24 GiB machine: 1024 px windows with exact margins; see
nst_jax/memory.py). Adam rather than L-BFGS: its state is 2 image copies, L-BFGS's 23.

Measured per step on a 2-core CPU with 24 GiB, 1 pair (`python scripts/benchmark.py
--suite=memory --sizes=512,1024,2048,4096 --optimizers=adam --remats=blocks_1_3 --tile_sizes=0
--steps=2`):

  scale     peak memory    time per step    tiles
  512 px    TODO(measure)  TODO(measure)    TODO(measure)
  1024 px   TODO(measure)  TODO(measure)    TODO(measure)
  2048 px   TODO(measure)  TODO(measure)    TODO(measure)
  4096 px   TODO(measure)  TODO(measure)    TODO(measure)

TODO(measure): the whole run's wall time on that machine.
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 4096
  config.num_scales = 4
  config.scale_ratio = 2.0
  config.coarse_steps = 100
  config.num_steps = 20
  config.chunk_size = 10
  config.optimizer = 'adam'
  config.learning_rate = 0.02
  config.remat = 'blocks_1_3'
  config.tile_size = 0
  return config
