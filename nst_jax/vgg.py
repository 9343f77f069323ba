"""VGG19 feature extractor (Simonyan & Zisserman, 2014) as a `flax.linen` module.

Layer names follow the style-transfer literature: `conv{block}_{i}`, `relu{block}_{i}` and
`pool{block}`. Parameters are never loaded here: they come from `nst_jax.weights` and are passed
to `apply`, as in any Flax model.
"""

from collections.abc import Callable, Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from nst_jax.errors import ConfigError

# Output channels of each conv layer, block by block.
BLOCK_CHANNELS: tuple[tuple[int, ...], ...] = (
  (64, 64),
  (128, 128),
  (256, 256, 256, 256),
  (512, 512, 512, 512),
  (512, 512, 512, 512),
)

CONV_NAMES: tuple[str, ...] = tuple(
  f'conv{block}_{i}'
  for block, channels in enumerate(BLOCK_CHANNELS, start=1)
  for i in range(1, len(channels) + 1)
)


def _layer_names() -> tuple[str, ...]:
  names = []
  for block, channels in enumerate(BLOCK_CHANNELS, start=1):
    for i in range(1, len(channels) + 1):
      names += [f'conv{block}_{i}', f'relu{block}_{i}']
    names.append(f'pool{block}')
  return tuple(names)


# Every layer whose activation can be requested, in network order.
LAYER_NAMES: tuple[str, ...] = _layer_names()
_LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}

Pooling = Literal['max', 'avg']
Preprocessing = Literal['caffe', 'torch']

# Caffe/Keras VGG: BGR channel order, pixel values 0..255, minus these BGR means.
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
# torchvision: RGB in [0, 1], standardised with the ImageNet statistics.
TORCH_RGB_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_RGB_STD = np.array([0.229, 0.224, 0.225], np.float32)


def check_layer_names(layers: Sequence[str], where: str = 'layers') -> None:
  """Raises `ConfigError` (a `ValueError`) starting with `where` and listing the valid names if
  any of `layers` is not a VGG19 layer."""
  unknown = [name for name in layers if name not in _LAYER_INDEX]
  if unknown:
    raise ConfigError(
      f'{where}: unknown VGG19 layer(s) {", ".join(map(repr, unknown))}; valid names are: '
      + ', '.join(LAYER_NAMES)
    )


def layer_stride(layer: str) -> int:
  """Spatial downsampling factor of `layer`'s output relative to the input (1, 2, ..., 32)."""
  check_layer_names([layer])
  return 2 ** sum(name.startswith('pool') for name in LAYER_NAMES[: _LAYER_INDEX[layer] + 1])


def preprocess(images: jax.Array, mode: Preprocessing) -> jax.Array:
  """Maps RGB images in [0, 1], shape (..., 3), to the input the weights were trained on."""
  if mode == 'caffe':
    return images[..., ::-1] * 255.0 - CAFFE_BGR_MEAN
  if mode == 'torch':
    return (images - TORCH_RGB_MEAN) / TORCH_RGB_STD
  raise ValueError(f"unknown preprocessing {mode!r}; expected 'caffe' or 'torch'")


def pool2x2(x: jax.Array, kind: Pooling) -> jax.Array:
  """2x2, stride-2 max or average pooling of NHWC `x`; an odd last row or column is dropped.

  Written as a reshape and elementwise maxima of the four window positions rather than
  `lax.reduce_window` (whose gradient is a select-and-scatter) or a max-reduction (whose gradient
  compares, counts and divides per window): both are slower on XLA:CPU. Tied maxima share the
  gradient, as with `jnp.max`.
  """
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
  if kind == 'max':
    top = jnp.maximum(x[:, :, 0, :, 0], x[:, :, 0, :, 1])
    bottom = jnp.maximum(x[:, :, 1, :, 0], x[:, :, 1, :, 1])
    return jnp.maximum(top, bottom)
  if kind == 'avg':
    return x.mean(axis=(2, 4))
  raise ValueError(f"unknown pooling {kind!r}; expected 'max' or 'avg'")


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(
    x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 'SAME' convolution of NHWC `x` with an HWIO `kernel`, with a hand-written VJP.

  The input gradient is a convolution with the spatially flipped, in/out-swapped kernel, made
  here as an array in HWIO order. Left to autodiff, XLA:CPU folds that swap into the
  convolution's dimension numbers; inside a `while` or `cond` (every optimizer step here) such a
  convolution misses the fast (YNNPACK) kernels and runs several times slower. The kernel
  gradient is autodiff's, and XLA drops it when unused.

  A `jax.custom_vjp` defines reverse mode only, so forward-mode AD (`jax.jvp`, `jax.jacfwd`)
  fails through it; `VGG19(fast_conv_grad=False)` uses plain convolutions instead.
  """
  return _conv(x, kernel)


def _conv3x3_fwd(x, kernel):
  return _conv(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, g):
  x, kernel = residuals
  flipped = jnp.swapaxes(jnp.flip(kernel, (0, 1)), 2, 3)
  dx = _conv(g, lax.optimization_barrier(flipped))
  dkernel = jax.vjp(lambda k: _conv(x, k), kernel)[1](g)[0]
  return dx, dkernel


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _flax_conv(conv: Callable[[jax.Array, jax.Array], jax.Array]):
  """`nn.Conv`'s `conv_general_dilated` for the VGG convs (stride 1, 'SAME', NHWC/HWIO)."""

  def conv_general_dilated(lhs, rhs, window_strides, padding, **unused_kwargs):
    del unused_kwargs
    if tuple(window_strides) != (1, 1) or padding != 'SAME':
      raise ValueError(f'expected stride (1, 1) and SAME padding, got {window_strides}, {padding}')
    return conv(lhs, rhs)

  return conv_general_dilated


class VGG19(nn.Module):
  """The 16 conv layers of VGG19, returning the activations asked for.

  Attributes:
    pooling: 'max' (as trained) or 'avg' (smoother gradients, favoured for style transfer).
    preprocessing: how the weights expect their input, set by the weights' source
      ('caffe' for the Keras/Caffe weights, 'torch' for torchvision's); see `preprocess`.
    dtype: computation dtype (for example `jnp.bfloat16` on accelerators); parameters stay as
      passed in and activations are returned in this dtype.
    fast_conv_grad: True: the convs use `conv3x3`'s hand-written VJP (several times faster
      inside XLA:CPU loops), which is reverse mode only: `jax.jvp` and `jax.jacfwd` through the
      network fail. False: plain `lax` convolutions, which every transformation supports.
  """

  pooling: Pooling = 'max'
  preprocessing: Preprocessing = 'caffe'
  dtype: jnp.dtype = jnp.float32
  fast_conv_grad: bool = True

  @nn.compact
  def __call__(self, images: jax.Array, layers: Sequence[str]) -> dict[str, jax.Array]:
    """Runs the network up to the deepest layer in `layers`.

    Args:
      images: (N, H, W, 3) RGB floats in [0, 1].
      layers: names from `LAYER_NAMES`.

    Returns:
      `{name: activation}` for each name in `layers`; activations are (N, H / s, W / s, C),
      where s is `layer_stride(name)` (rounded down) and C the layer's channels.
    """
    check_layer_names(layers)
    wanted = set(layers)
    last = max(_LAYER_INDEX[name] for name in wanted)
    x = preprocess(jnp.asarray(images, self.dtype), self.preprocessing)
    outputs = {}
    for name in LAYER_NAMES[: last + 1]:
      if name.startswith('conv'):
        block, i = map(int, name[4:].split('_'))
        x = nn.Conv(
          BLOCK_CHANNELS[block - 1][i - 1],
          (3, 3),
          padding='SAME',
          dtype=self.dtype,
          conv_general_dilated=_flax_conv(conv3x3 if self.fast_conv_grad else _conv),
          name=name,
        )(x)
      elif name.startswith('relu'):
        x = nn.relu(x)
      else:
        x = pool2x2(x, self.pooling)
      if name in wanted:
        outputs[name] = x
    return outputs
