"""Tests for video: warping and certainty (core.motion), the temporal loss, DIS flow (io.flow),
a pass as one batch (run.video), and the command's inputs, errors and resume (app.video).

Small: 4 frames of 32 px, the random network where the weights do not matter.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import small
from scipy import ndimage

from nst_jax.app import script, session
from nst_jax.app import video as video_app
from nst_jax.core import motion
from nst_jax.core.losses import temporal
from nst_jax.errors import ConfigError, ImageError, StylizeInterrupted
from nst_jax.io import flow, images
from nst_jax.io import video as video_io
from nst_jax.lab import video_bench
from nst_jax.run import engine
from nst_jax.run import video as video_lib

# imageio-ffmpeg runs ffmpeg in a subprocess; Python warns about any fork in a threaded process.
pytestmark = pytest.mark.filterwarnings('ignore:os.fork:RuntimeWarning')
certainty = jax.jit(motion.certainty)


def texture(size: int = 80, seed: int = 0) -> np.ndarray:
  """A smooth random colour texture (size, size, 3) in [0, 1]."""
  rng = np.random.default_rng(seed)
  noise = ndimage.gaussian_filter(rng.uniform(size=(size, size, 3)), (2, 2, 0))
  return np.clip((noise - noise.mean()) * 6 + 0.5, 0, 1).astype(np.float32)


def pan(frames: int = 4, size: int = 32, shift=(3, 2)) -> np.ndarray:
  """Crops of `texture`, each moved by `shift` (dx, dy) px: frame j(p) = frame j-1(p + shift)."""
  big = texture()
  dx, dy = shift
  return np.stack([big[j * dy : j * dy + size, j * dx : j * dx + size] for j in range(frames)])


# --- core.motion ---------------------------------------------------------------------------------


def test_warp_reproduces_a_translation_inside_the_frame():
  frames = pan(2)
  flow_back = np.broadcast_to(np.float32([3, 2]), (32, 32, 2))  # Frame 1 -> frame 0.
  warped = np.asarray(motion.warp(frames[0], flow_back))
  np.testing.assert_allclose(warped[:-2, :-3], frames[1][:-2, :-3], atol=1e-6)
  # Sub-pixel: bilinear sampling is exact on a linear ramp.
  ramp = np.broadcast_to(np.linspace(0, 1, 32, dtype=np.float32), (32, 32))[..., None]
  half = np.broadcast_to(np.float32([0.5, 0]), (32, 32, 2))
  np.testing.assert_allclose(
    motion.warp(ramp, half)[:, :-1], (ramp[:, :-1] + ramp[:, 1:]) / 2, atol=1e-6
  )


def test_certainty_is_zero_where_content_appears_and_one_where_it_stays():
  # A pan: the last 3 columns and 2 rows of frame 1 were outside frame 0.
  back = np.broadcast_to(np.float32([3, 2]), (32, 32, 2))
  c = np.asarray(certainty(-back, back))[..., 0]
  assert (c[:, -3:] == 0).all() and (c[-2:, :] == 0).all()
  assert (c[:-6, :-7] > 0.999).all()
  # A square moving 4 px right over a still background uncovers the columns it left.
  forward = np.zeros((32, 32, 2), np.float32)
  forward[10:20, 8:18] = (4, 0)  # Frame 0's square.
  backward = np.zeros((32, 32, 2), np.float32)
  backward[10:20, 12:22] = (-4, 0)  # Frame 1's square.
  c = np.asarray(certainty(forward, backward))[..., 0]
  assert (c[10:20, 8:12] == 0).all()  # Background that was behind the square: disoccluded.
  assert (c[10:20, 12:22].min() == 0) and (c[14:16, 16:18] > 0.999).all()  # Its edges: boundary.
  assert c[2:6, 2:6].min() > 0.999
  assert 0 <= c.min() and c.max() <= 1


def test_the_colour_check_rejects_a_warp_that_drags_an_object_over_uncovered_background():
  # A bar (columns 8-15 in frame 0, 12-19 in frame 1) over a still background, with flows that
  # give its motion to the background it uncovers (columns 8-11 of frame 1), both ways, as DIS
  # tends to: Ruder's checks trust that strip; the colours do not.
  background, bar = texture(32, 1), texture(32, 2)
  previous, current = background.copy(), background.copy()
  previous[:, 8:16], current[:, 12:20] = bar[:, 8:16], bar[:, 12:20]
  forward, backward = np.zeros((2, 32, 32, 2), np.float32)
  forward[:, 4:16] = (4, 0)  # Frame 0's bar and the 4 columns left of it move right...
  backward[:, 8:20] = (-4, 0)  # ...so frame 1's bar and the strip come from 4 px to the left.
  strip = (slice(2, 30), slice(9, 11))
  ruder = np.asarray(certainty(forward, backward))[..., 0]
  assert (ruder[strip] > 0.5).all()
  checked = motion.certainty(forward, backward, previous, current, tolerance=0.1)[..., 0]
  assert (np.asarray(checked)[strip] == 0).mean() > 0.9  # Bar and background rarely match.
  assert np.asarray(checked)[:, 24:30].min() > 0.999  # Still background away from the bar.
  off = motion.certainty(forward, backward, previous, current, tolerance=1.0)
  np.testing.assert_array_equal(off, ruder[..., None])


def test_long_term_certainties_trust_the_nearest_frame():
  c = jnp.stack(
    [jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[1.0, 1.0, 0.0]]), jnp.array([[1.0, 1.0, 1.0]])]
  )[..., None]
  np.testing.assert_array_equal(
    motion.long_term_certainties(c)[..., 0], [[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]]
  )


def test_propagate_blends_each_frame_with_its_predecessors_blend():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 8, 8, 3)), jnp.float32)
  still = jnp.zeros((3, 8, 8, 2))
  certain = jnp.ones((3, 8, 8, 1))
  blends, warped = motion.propagate(x, still, certain, 1.0)
  y1 = (x[1] + x[0]) / 2
  np.testing.assert_allclose(blends, [x[0], y1, (x[2] + y1) / 2], atol=1e-6)
  np.testing.assert_allclose(warped, [x[0], x[0], y1], atol=1e-6)
  np.testing.assert_allclose(motion.propagate(x, still, 0 * certain, 1.0)[0], x)  # c = 0: none.
  # A pan with an overwhelming weight carries frame 0 along, two shifts into frame 2.
  shift = jnp.broadcast_to(jnp.float32([1, 0]), (3, 8, 8, 2))
  carried = motion.propagate(x, shift, certain, 1e9)[0]
  np.testing.assert_allclose(carried[2][:, :-2], x[0][:, 2:], atol=1e-5)


# --- the temporal loss ---------------------------------------------------------------------------


def test_temporal_loss_is_zero_for_a_perfect_warp_and_its_gradient_is_masked():
  frames = pan(2)
  back = np.broadcast_to(np.float32([3, 2]), (32, 32, 2))
  warped = motion.warp(frames[0], back)
  c = certainty(-back, back)
  term = temporal.temporal_term()
  features = lambda x: {'image': x, 'guides': {'previous': warped, 'certainty': c}}  # noqa: E731
  inside = np.zeros((32, 32, 3), np.float32)
  inside[:-2, :-3] = frames[1][:-2, :-3]
  inside[-2:, :] = 0.9  # Where c = 0 the frame may be anything.
  inside[:, -3:] = 0.1
  assert float(term.loss(features(inside), None)) < 1e-12
  other = jnp.asarray(texture(32, seed=3))
  assert float(term.loss(features(other), None)) > 1e-3
  grad = np.asarray(jax.grad(lambda x: term.loss(features(x), None))(other))
  mask = np.broadcast_to(np.asarray(c), grad.shape)
  assert (grad[mask == 0] == 0).all() and (mask == 0).sum() > 100
  np.testing.assert_allclose(grad, 2 * mask * (other - warped) / other.size, atol=1e-9)
  # Luminance only: a change of chroma at constant luminance costs nothing.
  grey = jnp.full((32, 32, 3), 0.5)
  tinted = grey + jnp.array([0.1, -0.1 * 0.299 / 0.587, 0.0])
  assert float(temporal.temporal_loss(tinted, grey, c, luminance=True)) < 1e-12
  assert float(temporal.temporal_loss(tinted, grey, c)) > 1e-4


def test_temporal_loss_tile_sums_add_up_to_the_whole():
  rng = np.random.default_rng(0)
  x, p = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  c = rng.uniform(size=(16, 16, 1)).astype(np.float32)
  guides = {'previous': p, 'certainty': c, 'previous_2': x[::-1], 'certainty_2': c[::-1]}
  loss = temporal.TemporalLoss()
  features = {'image': x, 'guides': guides}
  top = np.zeros((16, 16), np.float32)
  top[:7] = 1
  halves = [loss.tile_sums(features, {'image': m}, None) for m in (top, 1 - top)]
  totals = jax.tree.map(lambda a, b: a + b, *halves)
  np.testing.assert_allclose(loss.from_tile_sums(totals, None), loss(features, None), rtol=1e-5)
  assert float(loss(features, None)) > float(temporal.temporal_loss(x, p, c))  # Both offsets.
  with pytest.raises(ConfigError, match="needs the guides 'previous' and 'certainty'"):
    loss({'image': x}, None)


# --- io.flow -------------------------------------------------------------------------------------


def test_dis_flow_recovers_a_translation_within_half_a_pixel():
  frames = pan(2)
  estimated = flow.FlowEstimator('medium')(frames[1], frames[0])  # Frame 1 -> frame 0: (3, 2).
  error = np.linalg.norm(estimated[4:-4, 4:-4] - np.float32([3, 2]), axis=-1)
  assert error.mean() < 0.5 and np.median(error) < 0.5
  with pytest.raises(ConfigError, match='preset'):
    flow.FlowEstimator('slow')


def test_dis_flow_is_refined_to_full_resolution_on_flat_regions():
  """A 64 px pan over the rocket photograph, mostly clear sky: at full resolution the flow is
  within 0.2 px of the true (-3, -2) on average (0.11 measured; the preset's own half
  resolution gave 0.65)."""
  frames = video_bench.pan('rocket', 64, 4, (3, 2))
  error = video_bench.pan_endpoint_error(flow.FlowEstimator('medium'), frames, (3, 2))
  assert error < 0.2, error


# --- run.video: a pass is one batch --------------------------------------------------------------


@pytest.fixture(scope='module')
def clip_run():
  config = small.small_config('losses.temporal.weight=100.0', 'video.passes=3')
  frames = pan()
  run = video_lib.VideoRun.create(frames, config)
  run.results[...] = np.clip(frames + 0.1 * texture(32, 5)[None], 0, 1)  # A stand-in pass 1.
  return run


@pytest.mark.slow
def test_a_pass_as_one_batch_equals_its_frames_one_by_one(clip_run, random_network):
  run = clip_run
  assert [b.kind for b in run.batches] == ['first', 'forward', 'backward']
  given = run.inputs(1)
  assert float(given.guides['certainty'][0].max()) == 0  # The first frame has no previous.
  assert float(given.guides['certainty'][1:].min()) == 0 and given.config.init.kind == 'image'

  def stylize(index):
    return engine.stylize(
      run.frames[index],
      [small.small_pairs()[1][1]],
      given.config,
      init_images=given.init_images[index],
      guides={k: v[index] for k, v in given.guides.items()},
      network=random_network,
    ).images

  together = stylize([0, 1, 2, 3])
  alone = np.concatenate([stylize([j]) for j in range(4)])
  np.testing.assert_allclose(together, alone, atol=2e-5)
  assert np.abs(together - given.init_images).max() > 1e-3  # It did optimise.


def test_propagated_passes_start_from_the_blends_along_the_clip(clip_run):
  config = small.small_config('video.propagate=True', 'video.blend=2.0', 'video.passes=3')
  video_lib.settle_config(config, 4)
  results, clip = clip_run.results, clip_run.clip
  for b, forward in ((1, True), (2, False)):
    given = video_lib.batch_inputs(clip_run.batches[b], clip_run.frames, results, clip, config)
    order = slice(None) if forward else slice(None, None, -1)
    flows, c = (clip.to_previous, clip.from_previous) if forward else (clip.to_next, clip.from_next)
    blends, warped = motion.propagate(results[order], flows[order], c[order], 2.0)
    np.testing.assert_allclose(given.init_images, blends[order], atol=1e-6)
    np.testing.assert_allclose(given.guides['previous'], np.clip(warped[order], 0, 1), atol=1e-6)
    np.testing.assert_allclose(given.guides['certainty'], c)
  # Frame 3's start (forwards) holds frames 0-2's blends, not only frame 2's previous result.
  starts = [
    video_lib.batch_inputs(clip_run.batches[1], clip_run.frames, results, clip, c).init_images
    for c in (
      config,
      small.small_config('video.propagate=False', 'video.blend=2.0', 'video.passes=3'),
    )
  ]
  assert np.abs(starts[0][3] - starts[1][3]).max() > 1e-3


def test_the_colour_check_keeps_a_pans_certainty(clip_run):
  assert clip_run.config.video.color_tolerance == 0.1  # The default checks colours.
  config = small.small_config('losses.temporal.weight=100.0', 'video.color_tolerance=1.0')
  unchecked = video_lib.VideoRun.create(pan(), config).clip
  np.testing.assert_array_equal(unchecked.from_previous, clip_run.clip.from_previous)
  np.testing.assert_array_equal(unchecked.from_next, clip_run.clip.from_next)
  with pytest.raises(ConfigError, match='config.video.color_tolerance'):
    video_lib.check_config(small.small_config('video.color_tolerance=2.0'))


def test_sequential_and_independent_plans(clip_run):
  config = small.small_config('video.mode=sequential', 'video.passes=2')
  video_lib.settle_config(config, 4)
  assert [b.frames for b in video_lib.plan(4, config)] == [(0,), (1,), (2,), (3,)]
  assert config.schedule.num_steps == 12  # Every mode: passes * num_steps per frame.
  given = video_lib.batch_inputs(
    video_lib.plan(4, config)[2], clip_run.frames, clip_run.results, clip_run.clip, config
  )
  c = given.guides['certainty']
  expected = c * given.guides['previous'] + (1 - c) * clip_run.frames[2:3]
  np.testing.assert_allclose(given.init_images, expected, atol=1e-6)  # Ruder's prevWarped.
  still = small.small_config('color_control=luminance_only')
  video_lib.settle_config(still, 1)
  assert still.video.mode == 'independent' and still.losses.temporal.luminance
  with pytest.raises(ConfigError, match='config.video.mode'):
    video_lib.check_config(small.small_config('video.mode=fast'))


def test_sweeps_plan_ruders_passes_and_use_this_passs_neighbour(clip_run):
  config = small.small_config('video.mode=sweeps', 'video.passes=3')
  video_lib.settle_config(config, 4)
  assert config.schedule.num_steps == 6  # A pass runs num_steps, as in multipass.
  batches = video_lib.plan(4, config)
  assert [(b.frames, b.kind) for b in batches] == [
    ((0, 1, 2, 3), 'first'),
    *(((j,), 'forward_sweep') for j in range(4)),
    *(((j,), 'backward_sweep') for j in (3, 2, 1, 0)),
  ]
  assert batches[7].label == 'pass 3/3, frame 2/4'
  results = clip_run.results.copy()
  results[2] = 1.0 - results[2]  # Frame 2 changed in this pass: frame 1 must see the change.
  given = video_lib.batch_inputs(batches[7], clip_run.frames, results, clip_run.clip, config)
  warped, c = video_lib.neighbours(results, clip_run.clip, forward=False)
  np.testing.assert_allclose(given.guides['previous'], warped[1:2], atol=1e-6)
  np.testing.assert_allclose(given.guides['certainty'], c[1:2])
  blended = motion.blend(results[1:2], warped[1:2], c[1:2], config.video.blend)
  np.testing.assert_allclose(given.init_images, blended, atol=1e-6)
  # Frame 0 of a forward sweep has no previous frame to hold to.
  first = video_lib.batch_inputs(batches[1], clip_run.frames, results, clip_run.clip, config)
  assert not first.guides['certainty'].any()


def test_sweeps_run_end_to_end_one_call_per_frame_after_the_first_pass(random_network, monkeypatch):
  config = small.small_config(
    'video.mode=sweeps', 'video.passes=2', 'schedule.num_steps=2', 'losses.temporal.weight=10.0'
  )
  real, calls = engine.stylize, []

  def counted(contents, *args, **kwargs):
    calls.append(len(contents))
    return real(contents, *args, **kwargs)

  monkeypatch.setattr(engine, 'stylize', counted)
  frames = pan(3)
  result = video_lib.stylize_video(
    frames, small.small_pairs()[1][1], config, network=random_network
  )
  assert calls == [3, 1, 1, 1]  # Pass 1 as one batch, then a sweep of the 3 frames.
  assert result.shape == frames.shape and np.isfinite(result).all()
  assert 0 <= result.min() and result.max() <= 1


def test_sequential_long_term_holds_each_pixel_to_its_nearest_certain_frame():
  """Ruder's long-term consistency: frame 3 of a pan is held to frames 2 and 1 (offsets 1, 2),
  each target warped with the direct flow (so it matches the frame's own content), and where
  the previous frame is certain the frame two back gets no weight."""
  config = small.small_config('video.mode=sequential', 'video.long_term=(2,)')
  frames = pan(shift=(2, 1))  # DIS at 32 px finds 4 px two frames apart, not 6.
  run = video_lib.VideoRun.create(frames, config)
  run.results[...] = frames  # Stand-in results: the frames themselves, so the warps are known.
  given = run.inputs(3)
  assert sorted(given.guides) == ['certainty', 'certainty_2', 'previous', 'previous_2']
  near, far = given.guides['certainty'][0, ..., 0], given.guides['certainty_2'][0, ..., 0]
  assert np.all(near + far <= 1 + 1e-6) and np.all(far[near > 0.99] < 1e-6)
  # Content that entered the view in the last frame is not in frame 2, nor in frame 1.
  assert np.all(near[:, -2:] == 0) and np.all(far[:, -2:] == 0)
  # Content that entered in frame 2 (columns -4, -3) is not in frame 1 either: far is 0 there,
  # while near holds it (softened at its edge).
  assert np.all(far[4:-6, -4:-2] == 0) and near[4:-6, -5].min() > 0.5
  # Each target is its frame's content warped exactly where its own warp is certain.
  (_, _, from_two_back), *_ = run.clip.long_term
  for name, trusted in (('previous', near[..., None]), ('previous_2', from_two_back[3])):
    error = np.abs(given.guides[name][0] - frames[3])[np.asarray(trusted)[..., 0] > 0.5]
    assert error.size and error.mean() < 0.03, (name, error.mean())
  first = run.inputs(1)  # Frame 1 has no frame two back: the previous frame only.
  assert sorted(first.guides) == ['certainty', 'previous']
  with pytest.raises(ConfigError, match="needs config.video.mode='sequential'"):
    video_lib.check_config(small.small_config('video.long_term=(2, 4)'))
  with pytest.raises(ConfigError, match='frame offsets >= 2'):
    video_lib.check_config(small.small_config('video.mode=sequential', 'video.long_term=(1,)'))


# --- app.video: the command ----------------------------------------------------------------------


@pytest.fixture
def clip_files(tmp_path, monkeypatch, random_network):
  monkeypatch.setattr(session.weights, 'load_vgg19', lambda *a, **k: random_network)
  folder = tmp_path / 'frames'
  for j, frame in enumerate(pan()):
    images.save_image(folder / f'f{j}.png', frame)
  images.save_image(tmp_path / 'style.png', small.small_pairs()[1][1])
  config = small.small_config('losses.temporal.weight=100.0', 'video.passes=3')
  return folder, str(tmp_path / 'style.png'), config


def test_bad_inputs_are_one_line_errors(clip_files, tmp_path):
  folder, style, config = clip_files

  def run(input_, output):
    video_app.stylize_video_files(config, input=str(input_), style=style, output=str(output))

  (tmp_path / 'empty').mkdir()
  (tmp_path / 'empty' / 'notes.txt').write_text('x')
  with pytest.raises(ImageError, match="'.*empty': no image files"):
    run(tmp_path / 'empty', tmp_path / 'out')
  images.save_image(tmp_path / 'mixed' / 'a.png', np.zeros((32, 32, 3)))
  images.save_image(tmp_path / 'mixed' / 'b.png', np.zeros((30, 32, 3)))
  with pytest.raises(ImageError, match='frames differ in size: a.png is 32x32, b.png is 32x30'):
    run(tmp_path / 'mixed', tmp_path / 'out')
  (tmp_path / 'broken.mp4').write_bytes(b'not a video' * 10)
  with pytest.raises(ImageError, match="'.*broken.mp4': cannot decode the video"):
    run(tmp_path / 'broken.mp4', tmp_path / 'out')
  with pytest.raises(ConfigError, match='would overwrite the input image'):
    run(folder, folder)
  video_io.write_frames(str(tmp_path / 'clip.gif'), pan(), [], 10.0)
  with pytest.raises(ConfigError, match='would overwrite the input image'):
    run(tmp_path / 'clip.gif', tmp_path / 'clip.gif')


def test_a_folder_with_other_files_and_a_single_frame(clip_files, tmp_path):
  folder, style, config = clip_files
  still = tmp_path / 'still'
  images.save_image(still / 'only.png', pan(1)[0])
  (still / 'README.txt').write_text('not a frame')
  out = video_app.stylize_video_files(
    config, input=str(still), style=style, output=str(tmp_path / 'still_out')
  )
  assert sorted(p.name for p in out.iterdir()) == ['only.png']
  record = json.loads((tmp_path / 'still_out.work' / 'run.json').read_text())
  assert record['mode'] == 'independent' and record['status'] == 'done'


@pytest.mark.slow
def test_resume_continues_after_an_interrupt(clip_files, tmp_path, monkeypatch):
  folder, style, config = clip_files
  real, calls = engine.stylize, []

  def interrupted_in_pass_3(contents, styles, config_, **kwargs):
    calls.append(kwargs['init_images'])
    if len(calls) == 3:
      raise StylizeInterrupted(np.asarray(contents), 0, 1)
    return real(contents, styles, config_, **kwargs)

  monkeypatch.setattr(engine, 'stylize', interrupted_in_pass_3)
  output = str(tmp_path / 'out.gif')
  with pytest.raises(script.Interrupted, match='2 of 3 batch.*continue from pass 3/3'):
    video_app.stylize_video_files(config, input=str(folder), style=style, output=output)
  with np.load(tmp_path / 'out.gif.work' / video_app.STATE_FILE) as state:
    assert int(state['done']) == 2
  pass_3_start = calls[2]

  calls.clear()
  video_app.stylize_video_files(config, input=str(folder), style=style, output=output)
  assert len(calls) == 1  # Only pass 3 ran again, from the same start.
  np.testing.assert_array_equal(calls[0], pass_3_start)
  clip = video_io.read_frames(output, 32)
  assert clip.images.shape == (4, 32, 32, 3)
  # The resumed run is the uninterrupted run: the same float32 frames.
  monkeypatch.setattr(engine, 'stylize', real)
  whole = str(tmp_path / 'whole.gif')
  video_app.stylize_video_files(config, input=str(folder), style=style, output=whole)
  with (
    np.load(tmp_path / 'out.gif.work' / video_app.STATE_FILE) as resumed,
    np.load(tmp_path / 'whole.gif.work' / video_app.STATE_FILE) as uninterrupted,
  ):
    assert int(resumed['done']) == int(uninterrupted['done']) == 3
    np.testing.assert_allclose(resumed['results'], uninterrupted['results'], atol=1e-6, rtol=0)
  # Another run's workdir is refused.
  config.video.blend = 0.5
  with pytest.raises(ConfigError, match='holds a video run with other'):
    video_app.stylize_video_files(config, input=str(folder), style=style, output=output)


def test_video_files_round_trip(tmp_path):
  frames = pan()
  for name in ('clip.mp4', 'clip.gif'):
    video_io.write_frames(str(tmp_path / name), frames, [], 12.0)
    clip = video_io.read_frames(str(tmp_path / name), 32)
    assert clip.images.shape == frames.shape and clip.fps == pytest.approx(12.0, rel=0.1)
    assert clip.names[0] == 'frame_00001.png' and clip.sources == [str(tmp_path / name)]
    assert np.abs(clip.images - frames).mean() < 0.05  # Lossy codecs and GIF palettes.
  assert not list(tmp_path.glob('.*partial*'))


def test_script_prints_one_error_line_before_any_work(tmp_path):
  images.save_image(tmp_path / 'frames' / 'a.png', np.zeros((32, 32, 3)))
  images.save_image(tmp_path / 'frames' / 'b.png', np.zeros((32, 40, 3)))
  images.save_image(tmp_path / 'style.png', np.zeros((32, 32, 3)))
  root = pathlib.Path(__file__).resolve().parents[1]
  done = subprocess.run(
    [
      sys.executable,
      str(root / 'scripts' / 'stylize_video.py'),
      f'--input={tmp_path}/frames',
      f'--style={tmp_path}/style.png',
      f'--output={tmp_path}/out/',
    ],
    capture_output=True,
    text=True,
    env={**os.environ, 'PYTHONPATH': str(root)},
    timeout=120,
  )
  lines = [line for line in done.stderr.splitlines() if line.startswith('error:')]
  assert done.returncode == 2, done.stderr
  assert lines == [
    f"error: --input '{tmp_path}/frames': frames differ in size: a.png is 32x32, b.png is 40x32"
  ], done.stderr
  assert not (tmp_path / 'out').exists()
