"""Style-transfer losses as pure functions of ONE example.

Features are one VGG layer's activation for one image, shape (H, W, C), any real values (after a
ReLU they are >= 0). Images are (H, W, C) RGB in [0, 1]. Nothing here has a batch dimension: batch
with `jax.vmap`, as for the `optax.losses` functions. Every function works under `jax.jit`,
`jax.vmap` and `jax.grad`.

One module per family:

* `content`: `content_loss`, feature MSE to the content (Gatys et al.).
* `gram`: `gram_style_loss` against a `GramTarget`, the Gram matrix (Gatys et al.).
* `gaussian`: `wasserstein2_style_loss` against a `GaussianTarget` (mean, covariance and its
  square root): the closed-form Wasserstein-2 distance between Gaussian fits.
* `tv`: `total_variation`, the seed's denoising term.
* `sliced`: `sliced_wasserstein_style_loss` (Heitz et al. 2021): sorted projections on random
  directions, against a `SlicedTarget` (style samples) or `SortedProjections` (fixed directions).
* `nearest_neighbor`: `nearest_neighbor_style_loss` (after NNST, Kolkin et al. 2022): each
  output hypercolumn pulled towards its nearest style hypercolumn, found by a blocked search.
* `self_similarity`: `self_similarity_content_loss` (STROTSS, Kolkin et al. 2019): the content
  kept through the cosine self-similarity of sampled positions.
* `style`: `style_target` and `style_loss` dispatch on the kind; `blend_style_targets` mixes
  several styles by mixing their statistics (not their losses).

Style statistics are precomputed once per style image as a *target*. How weighted terms combine
into one objective is `nst_jax.objective`'s business.
"""

from nst_jax.core.losses.content import content_loss
from nst_jax.core.losses.gaussian import (
  GaussianTarget,
  gaussian_style_target,
  mean_and_covariance,
  trace_sqrtm,
  wasserstein2_style_loss,
)
from nst_jax.core.losses.gram import GramTarget, gram_matrix, gram_style_loss, gram_style_target
from nst_jax.core.losses.nearest_neighbor import (
  NearestNeighborTarget,
  hypercolumn_grid,
  hypercolumns,
  nearest_neighbor_style_loss,
  nearest_neighbor_target,
  nearest_neighbors,
  rematch,
)
from nst_jax.core.losses.self_similarity import self_similarity_content_loss
from nst_jax.core.losses.sliced import (
  SlicedTarget,
  SortedProjections,
  random_directions,
  sliced_style_target,
  sliced_wasserstein_style_loss,
  sorted_projections,
)
from nst_jax.core.losses.style import (
  StyleKind,
  StyleTarget,
  blend_style_targets,
  check_blend_weights,
  style_loss,
  style_target,
)
from nst_jax.core.losses.tv import TVKind, total_variation

__all__ = [
  'GaussianTarget',
  'GramTarget',
  'NearestNeighborTarget',
  'SlicedTarget',
  'SortedProjections',
  'StyleKind',
  'StyleTarget',
  'TVKind',
  'blend_style_targets',
  'check_blend_weights',
  'content_loss',
  'gaussian_style_target',
  'gram_matrix',
  'gram_style_loss',
  'gram_style_target',
  'hypercolumn_grid',
  'hypercolumns',
  'mean_and_covariance',
  'nearest_neighbor_style_loss',
  'nearest_neighbor_target',
  'nearest_neighbors',
  'random_directions',
  'rematch',
  'self_similarity_content_loss',
  'sliced_style_target',
  'sliced_wasserstein_style_loss',
  'sorted_projections',
  'style_loss',
  'style_target',
  'total_variation',
  'trace_sqrtm',
  'wasserstein2_style_loss',
]
