r"""Measures video stylization: temporal consistency against `--independent`, and its cost.

  python scripts/benchmark_video.py --suite=consistency --output pan.json
  python scripts/benchmark_video.py --suite=real --clips=gif:waves --output real.json
  python scripts/benchmark_video.py --suite=cost --sizes=128,256 --output cost.json
  python scripts/benchmark_video.py --suite=flow --sizes=64,128,256 --output flow.json
  (docs/video.md has the exact commands of its figures)

consistency (synthetic pans with an exact flow), occlusion (a bar moving over a still
photograph: the background it hides comes back, for long-term consistency), real
(scikit-image's bundled GIF, warp error through DIS flow) and cost (a pass as one batch against
its frames one by one) and flow (DIS's endpoint error on the pans, at each preset's own finest
scale and at full resolution): see `nst_jax.lab.video_bench` for every figure.

summary: merges runs (`--inputs`, e.g. one process per mode, which a shared machine schedules
side by side) by clip, with each mode's ratios to 'independent'; with `--gallery` and
`--save_frames`, writes the first clip's input and the frames of each of `--modes` side by side
as an animated GIF, and as a sheet of frames (`<gallery>_frames.jpg`).

`--modes` lists configurations as NAME[@field=value...] over `--config` (e.g.
`multipass@video.temporal_target=blend`); ratios need 'independent' among them.
"""

import json

from absl import app, flags

from nst_jax.io import flow as flow_lib
from nst_jax.io import weights
from nst_jax.lab import samples, video_bench

_SUITE = flags.DEFINE_enum(
  'suite', 'consistency', ['consistency', 'occlusion', 'real', 'cost', 'flow', 'summary'], 'What.'
)
_INPUTS = flags.DEFINE_list('inputs', [], 'summary: JSON files of runs to merge.')
_CONFIG = flags.DEFINE_string('config', 'configs/video.py', 'Config file (with @overrides).')
_MODES = flags.DEFINE_list(
  'modes', ['independent', 'multipass'], 'NAME[@field=value...]: video.mode and overrides.'
)
_CLIPS = flags.DEFINE_list(
  'clips', ['astronaut:swirls', 'coffee:mosaic', 'chelsea:waves'], 'CONTENT:STYLE pans.'
)
_FRAMES = flags.DEFINE_integer('frames', 8, 'Frames per clip.')
_SIZE = flags.DEFINE_integer('size', 128, 'Image size (consistency and real suites).')
_SIZES = flags.DEFINE_list('sizes', ['128', '256'], 'Sizes of the cost and flow suites.')
_SHIFT = flags.DEFINE_list('shift', ['3', '2'], 'Pan per frame, (dx, dy) pixels.')
_BAR = flags.DEFINE_list('bar', ['4', '10'], "Occlusion: the bar's speed and width, pixels.")
_BACK = flags.DEFINE_integer('back', 4, 'Occlusion: frames back of the reappearance error.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file.', required=True)
_SAVE_FRAMES = flags.DEFINE_string('save_frames', None, 'Folder for the stylized frames (npz).')
_GALLERY = flags.DEFINE_string(
  'gallery', None, 'Animated GIF: the first clip, input and each mode side by side.'
)


def main(argv):
  del argv
  shift = tuple(int(s) for s in _SHIFT.value)
  if _SUITE.value == 'flow':
    result = {'suite': 'flow', 'frames': _FRAMES.value, 'shift': shift}
    for size in _SIZES.value:
      for clip in _CLIPS.value:
        name = clip.split(':')[0]
        errors = video_bench.flow_errors(name, int(size), _FRAMES.value, shift, flow_lib.PRESETS)
        result[f'{name}@{size}'] = errors
        print(name, size, errors, flush=True)
    with open(_OUTPUT.value, 'w') as f:
      json.dump(result, f, indent=1)
    return
  if _SUITE.value == 'summary':
    with open(_OUTPUT.value, 'w') as f:
      json.dump(video_bench.merge_runs(_INPUTS.value), f, indent=1)
    if _GALLERY.value:
      clip = (_CLIPS.value[0].split(':')[0], _SIZE.value, _FRAMES.value, shift)
      video_bench.saved_gallery(
        _GALLERY.value, video_bench.pan(*clip), _SAVE_FRAMES.value, _MODES.value
      )
    return
  config = video_bench.mode_config(_CONFIG.value, 'multipass')
  network = weights.load_vgg19(config.network.weights, pooling=config.network.pooling)
  size, count = _SIZE.value, _FRAMES.value
  result = {'suite': _SUITE.value, 'config': _CONFIG.value, 'modes': _MODES.value}
  result.update(frames=count, size=size)
  settings = dict(
    base=_CONFIG.value, modes=_MODES.value, save_frames=_SAVE_FRAMES.value, gallery=_GALLERY.value
  )
  if _SUITE.value == 'consistency':
    result['shift'] = shift
    for clip in _CLIPS.value:
      content, style_name = clip.split(':')
      frames = video_bench.pan(content, size, count, shift)
      style = getattr(samples, style_name)(size)
      errors = {'warp_error': lambda r, s=shift: video_bench.pan_warp_error(r, s)}
      print('clip', clip, flush=True)
      result[clip] = video_bench.consistency(frames, style, network, errors, **settings)
  elif _SUITE.value == 'occlusion':
    speed, width = (int(s) for s in _BAR.value)
    result.update(bar={'speed': speed, 'width': width}, back=_BACK.value)
    for clip in _CLIPS.value:
      content, style_name = clip.split(':')
      frames, covered = video_bench.occlusion(content, size, count, speed, width)
      style = getattr(samples, style_name)(size)
      errors = {
        'warp_error': lambda r, c=covered: video_bench.still_warp_error(r, c),
        'reappearance_error': lambda r, c=covered: video_bench.reappearance_error(
          r, c, _BACK.value
        ),
      }
      print('clip', clip, flush=True)
      result[clip] = video_bench.consistency(frames, style, network, errors, **settings)
  elif _SUITE.value == 'real':
    frames = video_bench.real_clip(count, size)
    for clip in _CLIPS.value:
      style = getattr(samples, clip.split(':')[1])(size)
      errors = {'warp_error': lambda r, f=frames: video_bench.flow_warp_error(r, f)}
      result[clip] = video_bench.consistency(frames, style, network, errors, **settings)
  elif _SUITE.value == 'cost':
    flow_lib.check_available()
    result['cost'] = video_bench.cost(network, _CONFIG.value, [int(s) for s in _SIZES.value], count)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(result, f, indent=1)


if __name__ == '__main__':
  app.run(main)
