"""Motion between video frames: warping with an optical flow, and where the flow can be trusted.

A flow is (H, W, 2) in pixels, (dx, dy) per pixel of the frame it belongs to, as OpenCV returns
it: the flow from frame a to frame b maps pixel p of a to p + flow(p) in b. Warping frame b with
it (`warp`) gives b's pixels at a's positions: an image aligned with a.

The certainty of a warp (`certainty`) follows Ruder et al., "Artistic style transfer for videos"
(2016), Sec. 3.2: with w the flow from the previous frame to this one and w_hat the flow back, a
pixel is occluded in the previous frame (c = 0) where the two disagree,
|w~ + w_hat|^2 > 0.01 (|w~|^2 + |w_hat|^2) + 0.5 (w~ = w warped to this frame), and it lies on a
motion boundary (c = 0) where |grad u_hat|^2 + |grad v_hat|^2 > 0.01 |w_hat|^2 + 0.002. Pixels
whose flow leaves the frame (content entering the view) get 0 too. The mask is then softened:
multiplied by its own Gaussian blur, which keeps every uncertain pixel at exactly 0 and ramps the
certain region's edge, so that the temporal pull does not stop at a hard seam.

Everything here is pure JAX on one frame; `jax.vmap` adds the frame axis.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# Ruder et al.'s thresholds (Sec. 3.2).
_DISAGREE_RELATIVE, _DISAGREE_ABSOLUTE = 0.01, 0.5
_BOUNDARY_RELATIVE, _BOUNDARY_ABSOLUTE = 0.01, 0.002


def _check_flow(flow: jax.Array, shape: tuple[int, ...], name: str) -> None:
  if flow.ndim != 3 or flow.shape[-1] != 2 or flow.shape[:2] != shape[:2]:
    raise ValueError(f'{name} must be (H, W, 2) with H, W = {shape[:2]}, got shape {flow.shape}')


def _sample_positions(flow: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(rows, columns) each pixel's flow points to, (H, W) each."""
  h, w = flow.shape[:2]
  rows, cols = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing='ij'
  )
  return rows + flow[..., 1], cols + flow[..., 0]


def warp(image: ArrayLike, flow: ArrayLike) -> jax.Array:
  """`image` sampled at `p + flow(p)` for every pixel p, bilinearly (edge pixels repeat outside).

  Args:
    image: (H, W, C) the frame to move.
    flow: (H, W, 2) (dx, dy) in pixels, from the frame to align with towards `image`'s frame.

  Returns:
    (H, W, C) float32: `image` aligned with the flow's own frame.
  """
  image = jnp.asarray(image, jnp.float32)
  flow = jnp.asarray(flow, jnp.float32)
  if image.ndim != 3:
    raise ValueError(f'image must be (H, W, C), got shape {image.shape}')
  _check_flow(flow, image.shape, 'flow')
  rows, cols = _sample_positions(flow)

  def channel(values: jax.Array) -> jax.Array:
    return jax.scipy.ndimage.map_coordinates(values, [rows, cols], order=1, mode='nearest')

  return jax.vmap(channel, in_axes=2, out_axes=2)(image)


def inside(flow: ArrayLike) -> jax.Array:
  """(H, W) bool: whether each pixel's flow lands inside the frame (its content was in view)."""
  flow = jnp.asarray(flow, jnp.float32)
  _check_flow(flow, flow.shape, 'flow')
  rows, cols = _sample_positions(flow)
  h, w = flow.shape[:2]
  return (rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)


def _gaussian_blur(mask: jax.Array, sigma: float) -> jax.Array:
  """(H, W) blurred by a separable Gaussian of `sigma` pixels (radius 2 sigma, edges repeated)."""
  radius = max(1, round(2 * sigma))
  taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / sigma) ** 2)
  taps = taps / jnp.sum(taps)
  padded = jnp.pad(mask, radius, mode='edge')
  h, w = mask.shape
  rows = sum(t * padded[i : i + h, :] for i, t in enumerate(taps))
  return sum(t * rows[:, i : i + w] for i, t in enumerate(taps))


def certainty(
  forward: ArrayLike,
  backward: ArrayLike,
  previous: ArrayLike | None = None,
  current: ArrayLike | None = None,
  *,
  sigma: float = 1.0,
  tolerance: float = 1.0,
) -> jax.Array:
  """Where the previous frame, warped to this one, can be trusted: Ruder et al.'s c.

  With the two input frames, also 0 where the previous frame warped onto this one differs from
  it by more than `tolerance` (the mean absolute difference over the channels): a colour check
  beside Ruder's, for the background that a moving object uncovers, which DIS flow tends to
  give the object's motion on both ways (so the two flows agree there and Ruder's test passes).

  Args:
    forward: (H, W, 2) the flow from the previous frame to this one (w).
    backward: (H, W, 2) the flow from this frame to the previous one (w_hat): the one that
      warps the previous frame onto this one.
    previous, current: (H, W, C) the input frames in [0, 1], for the colour check (optional).
    sigma: of the Gaussian that softens the mask's edges (module docstring); 0: a hard mask.
    tolerance: in [0, 1], the colour check's largest difference; 1 turns it off.

  Returns:
    (H, W, 1) float32 in [0, 1]: 0 where the content is occluded, on a motion boundary, or was
    outside the previous frame; 1 well inside the regions that stay in view.
  """
  forward = jnp.asarray(forward, jnp.float32)
  backward = jnp.asarray(backward, jnp.float32)
  _check_flow(forward, backward.shape, 'forward')
  _check_flow(backward, forward.shape, 'backward')
  forward_here = warp(forward, backward)  # w~: the forward flow at this frame's pixels.
  squared = lambda v: jnp.sum(jnp.square(v), axis=-1)  # noqa: E731
  disagree = squared(forward_here + backward) > (
    _DISAGREE_RELATIVE * (squared(forward_here) + squared(backward)) + _DISAGREE_ABSOLUTE
  )
  du = jnp.gradient(backward[..., 0])
  dv = jnp.gradient(backward[..., 1])
  variation = sum(jnp.square(d) for d in (*du, *dv))
  boundary = variation > _BOUNDARY_RELATIVE * squared(backward) + _BOUNDARY_ABSOLUTE
  hard = ~disagree & ~boundary & inside(backward)
  if previous is not None and current is not None and tolerance < 1.0:
    moved = warp(previous, backward)
    hard &= jnp.mean(jnp.abs(moved - jnp.asarray(current, jnp.float32)), axis=-1) <= tolerance
  hard = hard.astype(jnp.float32)
  soft = hard * _gaussian_blur(hard, sigma) if sigma > 0 else hard
  return jnp.clip(soft, 0.0, 1.0)[..., None]


def long_term_certainties(certainties: ArrayLike) -> jax.Array:
  """Ruder et al.'s long-term weights (Sec. 3.3): each pixel trusts the nearest frame it is
  certain in, `c_j - sum of the nearer frames' c`, clipped at 0.

  Args:
    certainties: (J, H, W, 1) the certainties of J frames, nearest first.

  Returns:
    (J, H, W, 1) in [0, 1].
  """
  c = jnp.asarray(certainties, jnp.float32)
  nearer = jnp.cumsum(c, axis=0) - c
  return jnp.clip(c - nearer, 0.0, 1.0)


def blend(own: ArrayLike, warped: ArrayLike, certainty: ArrayLike, weight: float) -> jax.Array:
  """`(own + weight c warped) / (1 + weight c)`: a frame blended with its neighbour warped onto
  it, where the warp is certain (Ruder et al.'s multi-pass start, blendWeight `weight` >= 0).

  Shapes broadcast: own, warped (..., H, W, C); certainty (..., H, W, 1) in [0, 1].
  """
  w = weight * jnp.asarray(certainty)
  return (jnp.asarray(own) + w * jnp.asarray(warped)) / (1.0 + w)


def propagate(
  images: ArrayLike, flows: ArrayLike, certainties: ArrayLike, weight: float
) -> tuple[jax.Array, jax.Array]:
  """Blends every frame with its predecessor's blend, warped, in frame order: the start images
  of a Ruder et al. sweep (2018, Sec. 4.3) without the optimisation between frames,
  `y_0 = x_0`, `y_j = (x_j + weight c_j warp(y_{j-1})) / (1 + weight c_j)`.

  Args:
    images: (F, H, W, C) the frames' current results, x.
    flows: (F, H, W, 2) the flow from frame j to frame j-1 (entry 0 unused).
    certainties: (F, H, W, 1) in [0, 1], the certainty of frame j-1 warped onto frame j.
    weight: >= 0, Ruder's blend weight (0: `y = x`).

  Returns:
    `(blends y (F, H, W, C), warped (F, H, W, C))`: `warped[j] = warp(y_{j-1})`, frame 0's the
    frame itself.
  """
  images = jnp.asarray(images, jnp.float32)
  flows = jnp.asarray(flows, jnp.float32)
  certainties = jnp.asarray(certainties, jnp.float32)

  def step(previous: jax.Array, frame: tuple[jax.Array, ...]) -> tuple[jax.Array, tuple]:
    image, flow, certain = frame
    warped = warp(previous, flow)
    blended = blend(image, warped, certain, weight)
    return blended, (blended, warped)

  _, (blends, warped) = jax.lax.scan(step, images[0], (images[1:], flows[1:], certainties[1:]))
  return jnp.concatenate([images[:1], blends]), jnp.concatenate([images[:1], warped])
