"""The commands' masks: `--content_mask`, `--mask_colors` and `--style_masks` as guides.

`CommandMasks` reads and checks every mask while a command plans, before the weights load:

* `--content_mask a.png,b.png`: one mask per content (a grid: per content row), in the order of
  the contents, with its content's aspect ratio;
* `--mask_colors '#000000,#ffffff'`: region i is the pixels of colour i (within
  `--mask_tolerance` per channel), painted with style i; without it a mask is a greyscale
  strength map (white: full style, black: content only);
* `--style_masks a.png,b.png` (optional, one per style): region i takes its statistics only from
  the part of the style that has colour i.

The pairs' guides follow `nst_jax.run.regions` (which style feeds which region). Bad masks are
one `error:` line: an aspect ratio that is not the image's, a colour that no pixel has, more
colours than styles, a style region with too few pixels for a loss. With a workdir, a picture of
each mask as read, resized and assigned is written to `<workdir>/regions/` before the run.
"""

import dataclasses
import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np
from absl import flags, logging

from nst_jax.app import sheets
from nst_jax.app.session import BatchInputs, stack_images
from nst_jax.core import labels, masks
from nst_jax.core.terms import terms_from_config
from nst_jax.errors import ConfigError
from nst_jax.io import images
from nst_jax.io import masks as mask_files
from nst_jax.run import regions, schedule
from nst_jax.run.pairs import Distributed


def define_flags(each: str = 'content') -> None:
  """--content_mask (one per `each`), --mask_colors, --style_masks and --mask_tolerance."""
  flags.DEFINE_list(
    'content_mask', [], f'Mask(s), one per {each}: a colour label map or a greyscale strength map.'
  )
  flags.DEFINE_list(
    'mask_colors',
    None,
    "Colours of the regions in the masks, e.g. '#000000,#ffffff': style i paints colour i.",
  )
  flags.DEFINE_list(
    'style_masks', [], 'Label map(s), one per style: region i takes its part of colour i.'
  )
  flags.DEFINE_float(
    'mask_tolerance', 0.1, 'Largest difference per channel (0-1) of a pixel that matches a colour.'
  )


def from_flags() -> 'CommandMasks':
  """The `CommandMasks` of the flags of `define_flags`."""
  values = [flags.FLAGS[n].value for n in ('content_mask', 'mask_colors', 'style_masks')]
  return CommandMasks(*values, flags.FLAGS['mask_tolerance'].value)


@dataclasses.dataclass
class CommandMasks:
  """A command's mask flags; `plan` reads the masks, `guides` and `style_guides` give them to
  each batch."""

  content_masks: Sequence[str] = ()
  mask_colors: Sequence[str] | None = None
  style_masks: Sequence[str] = ()
  tolerance: float = labels.DEFAULT_TOLERANCE

  def __post_init__(self):
    self.content_masks, self.style_masks = list(self.content_masks), list(self.style_masks)
    self.colors = labels.parse_colors(self.mask_colors) if self.mask_colors else None
    self.loaded: list[mask_files.Mask] = []
    self.styles: list[np.ndarray] = []
    self.style_loaded: list[mask_files.Mask] = []
    self.style_images: list[tuple[str, np.ndarray]] = []

  @property
  def active(self) -> bool:
    return bool(self.content_masks)

  @property
  def files(self) -> list[str]:
    """Every mask file (inputs that no output may replace)."""
    return [*self.content_masks, *self.style_masks]

  def info(self) -> dict:
    """What `run.json` records."""
    if not self.active:
      return {}
    return {
      'content_masks': self.content_masks,
      'mask_colors': list(self.mask_colors or ()),
      'style_masks': self.style_masks,
      'mask_tolerance': self.tolerance,
    }

  @property
  def count(self) -> int:
    """R: the regions (1 for a strength map)."""
    return 1 if self.colors is None else len(self.colors)

  def plan(
    self,
    config: ml_collections.ConfigDict,
    contents: Sequence[str],
    shapes: Sequence[tuple[int, int]],
    style_files: Sequence[str],
    styles: Sequence[np.ndarray],
    blend: np.ndarray | None,
  ) -> None:
    """Reads and checks every mask.

    Args:
      contents: the content files; `shapes`: their fitted sizes.
      style_files: the style files; `styles`: the style images at their final size.
      blend: how pairs use the styles (a positive weight: used), for `assign_styles`: (S,) for
        every pair, (B, S) for each (a grid: one-hot; its content masks are per content row),
        or None: every pair uses every style.
    """
    blend = np.ones(len(styles)) if blend is None else np.asarray(blend)
    grid = blend.ndim == 2
    blend = blend.reshape(-1, len(styles))
    what = 'content row' if grid else 'content'
    if not self.active:
      if self.mask_colors or self.style_masks:
        raise ConfigError('--mask_colors and --style_masks need --content_mask')
      return
    if not 0 <= self.tolerance < 1:
      raise ConfigError(f'--mask_tolerance={self.tolerance} must be in [0, 1)')
    _check_count('--content_mask', self.content_masks, contents, what)
    if self.style_masks:
      _check_count('--style_masks', self.style_masks, style_files, 'style')
    one_per_pair = bool((np.asarray(blend) > 0).sum(axis=1).max() == 1)
    if self.count > 1 and not self.style_masks and (one_per_pair or self.count > len(styles)):
      each = 'each grid cell has one style' if what == 'content row' else f'{len(styles)} style(s)'
      raise ConfigError(
        f'--mask_colors has {self.count} colours but {each}: give one style per colour, or '
        '--style_masks to take each region from the part of a style that has its colour'
      )
    self.loaded = [
      mask_files.load_mask(
        path,
        shape,
        colors=self.colors,
        tolerance=self.tolerance,
        label='content mask',
        image=f'{what} image {pathlib.Path(content).name!r}',
      )
      for path, shape, content in zip(self.content_masks, shapes, contents, strict=True)
    ]
    own = None
    if self.style_masks:
      one_hot = self.count > 1 and not one_per_pair
      self.style_loaded = [
        mask_files.load_mask(
          path,
          style.shape[:2],
          colors=self.colors,
          tolerance=self.tolerance,
          required=[s] if one_hot else None,
          label='style mask',
          image=f'style image {pathlib.Path(name).name!r}',
        )
        for s, (path, style, name) in enumerate(
          zip(self.style_masks, styles, style_files, strict=True)
        )
      ]
      own = [mask.regions for mask in self.style_loaded]
      self.style_images = [
        (pathlib.Path(n).stem, s) for n, s in zip(style_files, styles, strict=True)
      ]
    try:
      self.styles = regions.assign_styles(self.count, blend, [s.shape[:2] for s in styles], own)
    except ConfigError as e:
      raise ConfigError(f'--content_mask: {e}') from None
    names = [labels.format_color(c) for c in self.colors] if self.colors is not None else None
    sizes = sorted({size for shape in set(shapes) for size in schedule.scale_sizes(shape, config)})
    regions.check_region_sizes(
      terms_from_config(config),
      self.styles,
      sizes,
      config,
      style_names=[f'style image {pathlib.Path(n).name!r}' for n in style_files],
      region_names=[f'colour {n}' for n in names] if names else None,
    )

  def batch(self, inputs: BatchInputs, contents: Sequence[int]) -> BatchInputs:
    """A batch's `inputs` with the guides of its pairs, whose contents are these indices."""
    if not self.active:
      return inputs
    guides = {masks.REGIONS: stack_images([self.loaded[i].regions for i in contents])}
    return inputs._replace(guides=guides, style_guides=[{masks.REGIONS: g} for g in self.styles])

  def write_pictures(
    self,
    workdir: str | None,
    dist: Distributed,
    files: Sequence[str],
    contents: Sequence[np.ndarray | None],
  ) -> None:
    """`<workdir>/regions/<content>.png` and `styles/<style>.png` (process 0): each loaded
    content's mask and each style mask as read, resized and assigned (`sheets.regions_sheet`;
    a style's regions as they feed the regions of the contents)."""
    if not workdir or not self.active or not dist.is_writer:
      return
    folder = pathlib.Path(workdir) / 'regions'
    shown = [
      (pathlib.Path(f).stem, c, m.picture, m.regions)
      for f, c, m in zip(files, contents, self.loaded, strict=True)
    ]
    shown += [
      (f'styles/{name}', style, mask.picture, guide)
      for (name, style), mask, guide in zip(
        self.style_images, self.style_loaded, self.styles, strict=False
      )
    ]
    for name, image, picture, regions_ in shown:
      if image is not None:
        sheet = sheets.regions_sheet(image, picture, regions_, self.colors)
        images.save_image(folder / f'{name}.png', sheet, label='regions picture')
    logging.info('Wrote pictures of the regions to %s', folder)


def _check_count(flag: str, given: Sequence[str], expected: Sequence[str], what: str) -> None:
  if len(given) != len(expected):
    raise ConfigError(
      f'{flag} has {len(given)} file(s) for {len(expected)} {what} image(s); give one per '
      f'{what} image, in the same order'
    )
