r"""Classic Gatys et al. (2016): L-BFGS from the content image, Gram style loss on relu1_1..5_1.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_swirls.png --config configs/default.py

The reference setting, and the scripts' default: 500 L-BFGS steps at 512 px. Expect a strongly
stylized image that keeps the content's layout. Time to quality, measured on 2 CPU cores at 256 px
(docs/quality.md, "Quality against time"): it reaches configs/fast.py's final objective in
19-32 s, compile included, and is 20-27% lower by 200 steps (50-68 s); with pastiche 1.6's
objective (configs/compare/pastiche.py) it reaches pastiche's best saved image of 400 steps a
median of 4.2 times sooner over six pairs (1.7-13.2x, whole processes on an otherwise idle
machine).
Single scale is the fastest route measured: 3 scales with most steps at the coarse ones were
slower at 256 px. A 512 px step costs about 4 times a 256 px one; minutes on a GPU.
"""

from nst_jax.run import config as config_lib


def get_config():
  return config_lib.default_config()
