r"""Best-looking results: coarse to fine over 3 scales up to 768 px, Gaussian style loss, averaged.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_hq.png --config configs/hq.py --workdir runs/hq

Coarse scales (384 and 543 px) place the large strokes; the final scale adds detail. The Gaussian
(mean and covariance, Wasserstein-2) style loss transfers colours and textures more faithfully than
Gram matrices, and an exponential moving average of the iterates removes Adam's high-frequency
jitter. Meant for an
accelerator: an hour or more on a laptop CPU.
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 768
  config.num_scales = 3
  config.coarse_steps = 300
  config.num_steps = 400
  config.style_loss = 'gaussian'
  # Fixed weights, scaled to the Gaussian loss (W2 / channels, about 1e4 at the start, against a
  # content loss of about 1e6). Self-normalised terms starting from the content flip between all
  # content and all style.
  config.terms.content = 1.0
  config.terms.style = 50.0
  config.optimizer = 'adam'
  config.learning_rate = 0.02
  config.ema_decay = 0.95
  return config
