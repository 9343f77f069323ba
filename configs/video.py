r"""Video without flicker: Ruder et al.'s temporal loss, optical flow and multi-pass algorithm,
its first pass in one batch (docs/video.md).

  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out/ --config configs/video.py
  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out_independent/ --config configs/video.py --independent      # the baseline

256 px; Ruder's multi-pass as he runs it (video.mode='sweeps'): pass 1 stylizes every frame on
its own as one batch; passes 2-4 sweep the clip frame after frame, alternating direction, each
frame held by the temporal loss to its neighbour's result of the same pass, warped by DIS flow;
50 L-BFGS steps per frame and pass, temporal weight 5. Measured at 64 px on seven synthetic pans
(docs/video.md): 0.10-0.21x the warp error of --independent (median 0.14x) with the style kept
(1.03-1.19x its style term); weight 10 had less flicker (0.08-0.11x) but 1.26x the style term
on one clip. 'sequential' (one pass) streaks at the edges where new content enters, and
'multipass' (every pass one batch; 6 passes, blend 4, weight 1) reached 0.20-0.24x with
1.11-1.24x the style term on five pans. A still (a one-frame clip: 200 steps of the default
objective) is balanced at 128, 256 and 512 px on the four held-out pairs (docs/quality.md).
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.schedule.num_steps = 50  # Per pass: video.passes * 50 steps per frame in every mode.
  config.schedule.chunk_size = 25
  # A relative importance (config.normalize_losses): the temporal term is measured against its
  # value at the content frame, so 5 makes "as far from the warped neighbour as the photograph
  # is" cost five times "none of the style".
  config.losses.temporal.weight = 5.0
  config.video.passes = 4
  config.video.mode = 'sweeps'  # Least flicker measured; 'multipass' batches every pass.
  return config
