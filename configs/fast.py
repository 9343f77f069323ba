r"""Quick preview: 256 px, 100 Adam steps.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/preview.png --config configs/fast.py

For trying styles and weights before a long run. Measured on 2 CPU cores at 256 px
(`scripts/quality_curve.py`, docs/quality.md): 21-32 s per image, start-up and
compilation included; seconds on a GPU. Single-scale L-BFGS (configs/default.py at 256 px)
reaches the same objective as soon on a CPU and keeps improving; Adam is kept here because each
step costs one evaluation, with no sequential line search, which suits an accelerator's batches.
Fine detail and smoothness need configs/default.py or configs/hq.py.
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.optim.name = 'adam'
  config.optim.learning_rate = 0.04
  config.schedule.num_steps = 100
  config.schedule.chunk_size = 25
  return config
