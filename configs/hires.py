r"""High resolution on one machine: 4096 px, coarse to fine, most steps at low resolution.

  python scripts/stylize.py --content photo.jpg --style samples/style_swirls.png \
    --output out/photo_4096.png --config configs/hires.py --workdir runs/hires

Four scales, 512 -> 1024 -> 2048 -> 4096 px: 100 Adam steps at each coarser scale place the
strokes and colours where steps are cheap, and 20 at full size add the fine detail. Remat is on
(blocks 1-3 are recomputed in the backward pass: about 40% less memory per megapixel for 9-22%
more time per step, measured), and `tile_size=0` lets the memory plan tile the scales that still do
not fit (at 4096 px on a 24 GiB machine: 1024 px windows with exact margins; see
nst_jax/memory.py). Adam rather than L-BFGS: its state is 2 image copies, L-BFGS's 23.

Measured per step on a 2-core AMD EPYC with 24 GiB, 1 pair, Adam with remat='blocks_1_3'
(`python scripts/benchmark.py --suite=memory --sizes=512,1024,2048 --optimizers=adam
--remats=blocks_1_3 --tile_sizes=-1 --steps=2`; peak resident memory of the whole process):

  scale     peak memory         time per step       tiles
  512 px    0.98 GB             1.4 s               none
  1024 px   2.05 GB             5.3 s               none
  2048 px   6.21 GB             26.5 s              none
  4096 px   5.8 GB (estimate)   about 5 min (est.)  25 windows of 1024 px, exact 96 px margins

The 4096 px row is the memory plan's (nst_jax/memory.py, planning for 22 GB) and the 2048 px
step's cost per megapixel applied to the 25 windows' 37 network megapixels, plus about a third
for the tiled step's statistics pass (not measured: the 4096 px benchmark ran the default config, L-BFGS;
see docs/memory.md). The whole run, 300 coarse steps and 20 at 4096 px, so takes about 2.6 hours on
this CPU, most of it in the 20 full-size steps; minutes on a GPU.
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 4096
  config.schedule.num_scales = 4
  config.schedule.scale_ratio = 2.0
  config.schedule.coarse_steps = 100
  config.schedule.num_steps = 20
  config.schedule.chunk_size = 10
  config.optim.name = 'adam'
  config.optim.learning_rate = 0.02
  config.memory.remat = 'blocks_1_3'
  config.memory.tile_size = 0
  return config
