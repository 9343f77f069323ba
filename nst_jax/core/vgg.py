"""VGG19 feature extractor (Simonyan & Zisserman, 2014) as a `flax.linen` module.

Layer names follow the style-transfer literature: `conv{block}_{i}`, `relu{block}_{i}` and
`pool{block}`. Parameters are never loaded here: they come from `nst_jax.io.weights` and are passed
to `apply`, as in any Flax model.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

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


def receptive_radius(layer: str) -> int:
  """Pixels beyond its own `layer_stride` x `layer_stride` cell that a position of `layer` sees.

  Each 3x3 conv widens what a position sees by one position of its input on every side, each 2x2
  pooling by one on the far side (counted on both, to stay an upper bound); in input pixels,
  position counts scale by the stride. relu4_2 sees 45 px around its cell, relu5_1 85 px.
  """
  check_layer_names([layer])
  radius, stride = 0, 1
  for name in LAYER_NAMES[: _LAYER_INDEX[layer] + 1]:
    if name.startswith('conv'):
      radius += stride
    elif name.startswith('pool'):
      radius += stride
      stride *= 2
  return radius


def preprocess(images: jax.Array, mode: Preprocessing) -> jax.Array:
  """Maps RGB images in [0, 1], shape (..., 3), to the input the weights were trained on.

  In float32 whatever `images`' dtype (the means are float32 constants): `VGG19` casts the result
  to its compute dtype afterwards, so that a bfloat16 network rounds the preprocessed input once
  rather than the image and then the difference.
  """
  images = jnp.asarray(images, jnp.float32)
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


def region_mask(valid: jax.Array, size: tuple[int, int], stride: int) -> jax.Array:
  """(..., h, w) True on the positions of a map of `size` (h, w) at `stride` that lie in each
  image's own region `valid` (..., 2): its height and width in input pixels, top-left aligned.

  At stride s the region is floor(height / s) x floor(width / s): `pool2x2` drops an odd last row
  or column, so a pooled position lies in the region iff both its inputs do.
  """
  limits = jnp.asarray(valid) // stride
  rows = jnp.arange(size[0]) < limits[..., 0, None]
  cols = jnp.arange(size[1]) < limits[..., 1, None]
  return rows[..., :, None] & cols[..., None, :]


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


# The key of `VGG19.__call__`'s `valid` in the kernels passed to its segments.
_VALID = 'valid'


def cast_params(params: Any, dtype: jnp.dtype) -> Any:
  """`params` (a VGG19 variables tree) with every floating leaf cast to the compute `dtype`: done
  once per run, so that a bfloat16 network's programs hold bfloat16 weights (half the bytes to
  read per step) instead of converting float32 ones at every step."""
  dtype = jnp.dtype(dtype)
  return jax.tree.map(
    lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params
  )


# `VGG19.remat` values: the blocks whose activations the backward pass recomputes.
REMAT_BLOCKS: dict[str, tuple[int, ...]] = {
  'none': (),
  'blocks_1_2': (1, 2),
  'blocks_1_3': (1, 2, 3),
  'all_blocks': (1, 2, 3, 4, 5),
}
REMAT_POLICIES: tuple[str, ...] = tuple(REMAT_BLOCKS)


def _segments(names: Sequence[str], remat: str) -> list[tuple[tuple[str, ...], bool]]:
  """`names` (layers in network order) as runs `(layers, recomputed)`, one run per block."""
  runs: dict[int, list[str]] = {}
  for name in names:
    runs.setdefault(int(name[4]), []).append(name)
  return [(tuple(run), block in REMAT_BLOCKS[remat]) for block, run in runs.items()]


def recompute_in_backward(fn: Callable[[jax.Array, Any], Any]) -> Callable[[jax.Array, Any], Any]:
  """`fn(x, params)` that keeps only its inputs for the backward pass and recomputes the rest.

  What `jax.checkpoint(fn, policy=nothing_saveable)` means, but effective on XLA:CPU too: there
  the optimization barrier that `jax.checkpoint` places against common-subexpression elimination
  is removed early, CSE merges the recomputation with the forward pass, and nothing is saved
  (measured: the same peak memory). Here the recomputation reads `x` plus a zero derived from
  the incoming cotangent, so it cannot run before the backward pass nor be merged with the
  forward one. Gradients are autodiff's of `fn` (with `conv3x3`'s hand-written VJP inside).
  """

  @jax.custom_vjp
  def recomputed(x, params):
    return fn(x, params)

  def forward(x, params):
    return fn(x, params), (x, params)

  def backward(residuals, cotangent):
    x, params = residuals
    first = jnp.ravel(jax.tree.leaves(cotangent)[0])[0].astype(x.dtype)
    # min(|c|, 0) is 0 for any finite or infinite c (NaN stays NaN, as the gradient would be).
    x = x + jnp.minimum(jnp.abs(first), 0)
    return jax.vjp(fn, x, params)[1](cotangent)

  recomputed.defvjp(forward, backward)
  return recomputed


class _ConvParams(nn.Module):
  """One conv layer's `kernel` (3, 3, in, out) and `bias` (out,), initialised as `nn.Conv`'s."""

  in_channels: int
  out_channels: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    shape = (3, 3, self.in_channels, self.out_channels)
    kernel = self.param('kernel', nn.initializers.lecun_normal(), shape)
    return kernel, self.param('bias', nn.initializers.zeros_init(), (self.out_channels,))


class VGG19(nn.Module):
  """The 16 conv layers of VGG19, returning the activations asked for.

  Attributes:
    pooling: 'max' (as trained) or 'avg' (smoother gradients, favoured for style transfer).
    preprocessing: how the weights expect their input, set by the weights' source
      ('caffe' for the Keras/Caffe weights, 'torch' for torchvision's); see `preprocess`.
    dtype: the network's compute dtype (`jnp.bfloat16` halves activation memory and runs at
      the matrix units' full rate on accelerators). The input is preprocessed in float32 and
      cast once; every conv, bias, relu and pooling runs in this dtype, and activations are
      returned in it (callers cast them to float32 for their statistics, see
      `nst_jax.core.objective`). Parameters are best cast once beforehand (`cast_params`);
      parameters of another dtype are cast at every call. Gradients with respect to the input
      come back in the input's dtype (float32), through the same casts.
    fast_conv_grad: True: the convs use `conv3x3`'s hand-written VJP (several times faster
      inside XLA:CPU loops), which is reverse mode only: `jax.jvp` and `jax.jacfwd` through the
      network fail. False: plain `lax` convolutions, which every transformation supports.
    remat: which blocks the backward pass recomputes from their input instead of keeping their
      activations (one of `REMAT_POLICIES`: 'none', 'blocks_1_2', 'blocks_1_3', 'all_blocks';
      see `recompute_in_backward`). Values and gradients are the same; the early blocks, at
      full and half resolution, hold most of the memory and little of the work.
  """

  pooling: Pooling = 'max'
  preprocessing: Preprocessing = 'caffe'
  dtype: jnp.dtype = jnp.float32
  fast_conv_grad: bool = True
  remat: str = 'none'

  @nn.compact
  def __call__(
    self, images: jax.Array, layers: Sequence[str], valid: jax.Array | None = None
  ) -> dict[str, jax.Array]:
    """Runs the network up to the deepest layer in `layers`.

    Args:
      images: (N, H, W, 3) RGB floats in [0, 1].
      layers: names from `LAYER_NAMES`.
      valid: (N, 2) the height and width of each image's own region, top-left aligned inside
        the padded (H, W), or None (all of it). Positions outside the region are zeroed before
        every conv (`region_mask`), which pads with zeros: inside it, the activations are those
        of the region run alone, whatever the padding holds.

    Returns:
      `{name: activation}` for each name in `layers`; activations are (N, H / s, W / s, C),
      where s is `layer_stride(name)` (rounded down) and C the layer's channels.
    """
    check_layer_names(layers)
    if self.remat not in REMAT_POLICIES:
      raise ConfigError(f'unknown remat policy {self.remat!r}; expected one of {REMAT_POLICIES}')
    wanted = frozenset(layers)
    last = max(_LAYER_INDEX[name] for name in wanted)
    x = preprocess(images, self.preprocessing).astype(self.dtype)
    names = LAYER_NAMES[: last + 1]
    kernels = {}
    in_channels = 3
    for block, channels in enumerate(BLOCK_CHANNELS, start=1):
      for i, out_channels in enumerate(channels, start=1):
        name = f'conv{block}_{i}'
        if name in names:
          kernels[name] = _ConvParams(in_channels, out_channels, name=name)()
        in_channels = out_channels
    outputs = {}
    for run, recomputed in _segments(names, self.remat):
      run_kernels = {n: kernels[n] for n in run if n in kernels}
      if valid is not None:  # A leaf of the params, as custom VJPs must not close over tracers.
        run_kernels[_VALID] = jnp.asarray(valid, jnp.float32)
      x, found = self._segment(run, wanted, recomputed)(x, run_kernels)
      outputs.update(found)
    return outputs

  def _segment(self, names: tuple[str, ...], wanted: frozenset, recomputed: bool) -> Callable:
    """`(x, kernels) -> (x, {wanted: activation})` for the run of layers `names`."""
    layers = functools.partial(self._layers, names=names, wanted=wanted)
    if not recomputed:
      return layers
    if names[:2] == ('conv1_1', 'relu1_1') and len(names) > 2:
      # conv1_1 reads 3 channels, so running it a third time costs little, and spares keeping
      # its full-resolution output alive through all of block 1's backward pass.
      head = recompute_in_backward(functools.partial(self._layers, names=names[:2], wanted=wanted))
      tail = functools.partial(self._layers, names=names[2:], wanted=wanted)

      def layers(x, kernels):
        x, found = head(x, {k: v for k, v in kernels.items() if k in ('conv1_1', _VALID)})
        x, more = tail(x, kernels)
        return x, {**found, **more}

    return recompute_in_backward(layers)

  def _layers(self, x, kernels, *, names, wanted):
    """The layers `names` on `x`; returns the last one's output and the `wanted` ones."""
    conv = conv3x3 if self.fast_conv_grad else _conv
    outputs = {}
    for name in names:
      if name.startswith('conv'):
        if _VALID in kernels:
          inside = region_mask(kernels[_VALID], x.shape[1:3], layer_stride(name))
          x = x * inside[..., None].astype(x.dtype)
        kernel, bias = kernels[name]
        x = conv(x, kernel.astype(self.dtype)) + bias.astype(self.dtype)
      elif name.startswith('relu'):
        x = nn.relu(x)
      else:
        x = pool2x2(x, self.pooling)
      if name in wanted:
        outputs[name] = x
    return x, outputs
