r"""Reference: the same Adam step in PyTorch (oneDNN, frozen weights), for scripts/benchmark.py.

  pip install torch   # not a dependency of nst_jax; CPU or CUDA build
  python scripts/benchmark_torch.py --size=256 --steps=6

Same network (VGG19 with nst_jax's converted weights, Caffe preprocessing, max pooling), same
losses (content MSE on relu4_2, mean Gram MSE on relu1_1..relu5_1, weights 1 and 5e-4), Adam on
the image, weights with requires_grad=False. Prints the median step time after one warm-up step.
"""

import statistics
import time

import numpy as np
import torch
from absl import app, flags

from nst_jax.core import vgg
from nst_jax.io import weights

_SIZE = flags.DEFINE_integer('size', 256, 'Image side in pixels.')
_STEPS = flags.DEFINE_integer('steps', 6, 'Timed steps (after one warm-up step).')
STYLE = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')


def features(x, layers, convs):
  out = {}
  mean = torch.tensor(vgg.CAFFE_BGR_MEAN).view(1, 3, 1, 1)
  x = x.flip(1) * 255.0 - mean
  deepest = max(vgg.LAYER_NAMES.index(n) for n in layers)
  for name in vgg.LAYER_NAMES[: deepest + 1]:
    if name.startswith('conv'):
      x = convs[name](x)
    elif name.startswith('relu'):
      x = torch.relu(x)
    else:
      x = torch.nn.functional.max_pool2d(x, 2)
    if name in layers:
      out[name] = x
  return out


def gram(f):
  f = f.flatten(2)[0]
  return f @ f.T / f.shape[1]


def main(argv):
  del argv
  params = weights.load_vgg19_params()['params']
  convs = {}
  for name in vgg.CONV_NAMES:
    kernel = np.asarray(params[name]['kernel']).transpose(3, 2, 0, 1)
    conv = torch.nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel))
    conv.bias.data = torch.from_numpy(np.array(params[name]['bias']))
    conv.requires_grad_(False)
    convs[name] = conv
  size = _SIZE.value
  rng = np.random.default_rng(0)
  content = torch.from_numpy(rng.uniform(size=(1, 3, size, size)).astype(np.float32))
  style = torch.from_numpy(rng.uniform(size=(1, 3, size, size)).astype(np.float32))
  layers = ('relu4_2', *STYLE)
  with torch.no_grad():
    content_target = features(content, layers, convs)['relu4_2']
    style_targets = {n: gram(f) for n, f in features(style, STYLE, convs).items()}
  image = content.clone().requires_grad_(True)
  optimizer = torch.optim.Adam([image], lr=0.02)
  times = []
  for step in range(_STEPS.value + 1):
    start = time.perf_counter()
    optimizer.zero_grad()
    f = features(image, layers, convs)
    loss = torch.mean((f['relu4_2'] - content_target) ** 2)
    loss = loss + 5e-4 * sum(0.2 * torch.mean((gram(f[n]) - style_targets[n]) ** 2) for n in STYLE)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
      image.clamp_(0, 1)
    if step:
      times.append(time.perf_counter() - start)
  print(
    f'torch {torch.__version__}, {torch.get_num_threads()} threads, {size} px: '
    f'median {statistics.median(times):.3f} s/step, min {min(times):.3f} s'
  )


if __name__ == '__main__':
  app.run(main)
