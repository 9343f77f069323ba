r"""Video without flicker: Ruder et al.'s temporal loss, optical flow and multi-pass algorithm,
its first pass in one batch (docs/video.md).

  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out/ --config configs/video.py
  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out_independent/ --config configs/video.py --independent      # the baseline

256 px; Ruder's multi-pass as he runs it (video.mode='sweeps'): pass 1 stylizes every frame on
its own as one batch; passes 2-4 sweep the clip frame after frame, alternating direction, each
frame held by the temporal loss to its neighbour's result of the same pass, warped by DIS flow;
50 L-BFGS steps per frame and pass. Measured at 64 px on three synthetic pans (two not tuned
on): 0.09-0.13x the warp error of --independent (median 0.12x) with the style kept (1.10-1.20x
its style term); 'sequential' (one pass) reached 0.13-0.17x but streaks at the edges where new
content enters, and 'multipass' (each pass one batch) 0.19-0.23x with 6 passes but up to 1.28x
the style term (docs/video.md).
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.schedule.num_steps = 50  # Per pass: video.passes * 50 steps per frame in every mode.
  config.schedule.chunk_size = 25
  # A relative importance (config.normalize_losses): the temporal term is measured against its
  # value at the content frame, so 10 makes "as far from the warped neighbour as the photograph
  # is" cost ten times "none of the style".
  config.losses.temporal.weight = 10.0
  config.video.passes = 4
  config.video.mode = 'sweeps'  # Least flicker measured; 'multipass' batches every pass.
  return config
