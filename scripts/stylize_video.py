r"""Stylizes a clip without flicker: Ruder et al.'s temporal loss with optical flow, multi-pass,
every frame of a pass in one batch (docs/video.md).

  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out/ --config configs/video.py
  python scripts/stylize_video.py --input clip.mp4 --style a.jpg --output out/clip.mp4 \
    --config configs/video.py --independent

`--input` is a folder of frames (sorted by name; other files are ignored, with a note), a video
file (.mp4, .mov, .mkv, .avi, .webm, .gif) or one image (a still). `--output` is a folder (the
frames, with the input's names) or a video file (at `--fps`, default the input's or 24).
`--independent` stylizes every frame on its own with the same config: the flickering baseline.

`--workdir` (default `<output>.work`) receives the run record and, after every pass, the frames
so far: after Ctrl-C (exit code 130), run the same command again and the passes already done are
not redone. Bad flags, configs or inputs print one `error:` line before any work; exit code 2.
Needs the `video` extra: pip install 'nst_jax[video]'.
"""

import pathlib

from absl import flags

from nst_jax.app import hosts, script
from nst_jax.app import video as video_app

_CONFIG = script.config_flag(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'video.py')
_INPUT = flags.DEFINE_string('input', None, 'Folder of frames, video file or image.', required=True)
_STYLE = flags.DEFINE_string('style', None, 'Style image file.', required=True)
_OUTPUT = flags.DEFINE_string(
  'output', None, 'Folder for the frames, or a video file.', required=True
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run record and resume state; <output>.work.')
_INDEPENDENT = flags.DEFINE_bool('independent', False, 'Every frame on its own (the baseline).')
_FPS = flags.DEFINE_float('fps', 0.0, "Frames per second of an output video; 0: the input's.")


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  video_app.stylize_video_files(
    script.get_config(_CONFIG),
    input=_INPUT.value,
    style=_STYLE.value,
    output=_OUTPUT.value,
    workdir=_WORKDIR.value,
    independent=_INDEPENDENT.value,
    fps=_FPS.value,
    dist=hosts.setup_devices(),
  )


if __name__ == '__main__':
  script.run(main)
