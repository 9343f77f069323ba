r"""Video without flicker: Ruder et al.'s temporal loss, optical flow and multi-pass algorithm,
every frame of a pass in one batch (docs/video.md).

  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out/ --config configs/video.py
  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out_independent/ --config configs/video.py --independent      # the baseline

256 px; Ruder's single pass, frame after frame (video.mode='sequential'): each frame starts from
its predecessor's result warped by DIS flow and is held to it by the temporal loss, 4 x 50
L-BFGS steps per frame. Measured at 64 px on a synthetic pan: 0.17x the warp error of
--independent with the style kept (1.12x); 'multipass' (each pass one batch) reached 0.52x
(docs/video.md). On a CPU batching saves nothing (ratio 0.99), so the sequential mode costs the
same there.
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
  config.video.mode = 'sequential'  # Least flicker measured; 'multipass' batches each pass.
  return config
