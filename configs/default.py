r"""Classic Gatys et al. (2016): L-BFGS from the content image, Gram style loss on relu1_1..5_1.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_swirls.png --config configs/default.py

The reference setting, and the scripts' default: 500 L-BFGS steps at 512 px. Expect a strongly
stylized image that keeps the content's layout; minutes on a GPU, much longer on a laptop CPU
(use configs/fast.py there for a preview).
"""

from nst_jax import config as config_lib


def get_config():
  return config_lib.default_config()
