"""Style-transfer losses as pure functions of ONE example, and their terms.

Features are one VGG layer's activation for one image, shape (H, W, C), any real values (after a
ReLU they are >= 0). Images are (H, W, C) RGB in [0, 1]. Nothing here has a batch dimension: batch
with `jax.vmap`, as for the `optax.losses` functions. Every function works under `jax.jit`,
`jax.vmap` and `jax.grad`.

One module per loss, each holding its maths, its target, its sums for tiles where it has them,
and its term, registered under the name that `config.losses` uses:

* `content` (`content`): `content_loss`, feature MSE to the content (Gatys et al.).
* `gram` (`gram`): `gram_style_loss` against a `GramTarget`, the Gram matrix (Gatys et al.).
* `gaussian` (`gaussian`): `wasserstein2_style_loss` against a `GaussianTarget` (mean,
  covariance and its square root): the closed-form Wasserstein-2 distance between Gaussian fits.
* `sliced` (`sliced`): `sliced_wasserstein_style_loss` (Heitz et al. 2021): sorted projections on
  random directions, against a `SlicedTarget` (style samples) or `SortedProjections`.
* `nearest_neighbor` (`nearest_neighbor`): `nearest_neighbor_style_loss` (after NNST, Kolkin et
  al. 2022): each output hypercolumn pulled towards its nearest style hypercolumn.
* `self_similarity` (`self_similarity`): `self_similarity_content_loss` (STROTSS, Kolkin et al.
  2019): the content kept through the cosine self-similarity of sampled positions.
* `tv` (`tv`): `total_variation`, the seed's denoising term.
* `temporal` (`temporal`): `temporal_loss` (Ruder et al. 2016), a video frame kept close to its
  warped stylized neighbour where the warp is certain (the frame's guides).

Shared: `sums` (sums over masked positions, for tiles and regions), `blend`
(`blend_style_targets` mixes several styles by mixing their statistics, not their losses),
`quantiles` (sorting and weighted quantiles, for the sliced loss), `style` (`style_target` and
`style_loss` by kind). Every style loss honours regions (`nst_jax.core.masks`). A module added
here registers its loss on import: adding a loss is its module and its test.
"""

import importlib
import pkgutil

from nst_jax.core.losses.blend import blend_style_targets, check_blend_weights
from nst_jax.core.losses.content import content_loss, content_term
from nst_jax.core.losses.gaussian import (
  GaussianTarget,
  gaussian_style_target,
  gaussian_term,
  mean_and_covariance,
  trace_sqrtm,
  wasserstein2_style_loss,
)
from nst_jax.core.losses.gram import (
  GramTarget,
  gram_matrix,
  gram_style_loss,
  gram_style_target,
  gram_term,
)
from nst_jax.core.losses.nearest_neighbor import (
  NearestNeighborTarget,
  hypercolumn_grid,
  hypercolumns,
  nearest_neighbor_style_loss,
  nearest_neighbor_target,
  nearest_neighbor_term,
  nearest_neighbors,
  rematch,
)
from nst_jax.core.losses.self_similarity import self_similarity_content_loss, self_similarity_term
from nst_jax.core.losses.sliced import (
  SlicedTarget,
  SortedProjections,
  random_directions,
  sliced_style_target,
  sliced_term,
  sliced_wasserstein_style_loss,
  sorted_projections,
)
from nst_jax.core.losses.style import StyleKind, StyleTarget, style_loss, style_target
from nst_jax.core.losses.temporal import temporal_loss, temporal_term
from nst_jax.core.losses.tv import TVKind, total_variation, tv_term

# Every module of this package registers its loss when imported, including ones added later.
for _module in pkgutil.iter_modules(__path__):
  importlib.import_module(f'{__name__}.{_module.name}')

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
  'content_term',
  'gaussian_style_target',
  'gaussian_term',
  'gram_matrix',
  'gram_style_loss',
  'gram_style_target',
  'gram_term',
  'hypercolumn_grid',
  'hypercolumns',
  'mean_and_covariance',
  'nearest_neighbor_style_loss',
  'nearest_neighbor_target',
  'nearest_neighbor_term',
  'nearest_neighbors',
  'random_directions',
  'rematch',
  'self_similarity_content_loss',
  'self_similarity_term',
  'sliced_style_target',
  'sliced_term',
  'sliced_wasserstein_style_loss',
  'sorted_projections',
  'style_loss',
  'style_target',
  'temporal_loss',
  'temporal_term',
  'total_variation',
  'trace_sqrtm',
  'tv_term',
  'wasserstein2_style_loss',
]
