"""Tests for nst_jax.lab.samples: the sample photographs and generated styles."""

import pathlib

import numpy as np

from nst_jax.io import images
from nst_jax.lab import samples


def test_samples_are_deterministic_colourful_and_distinct(tmp_path):
  paths = samples.write_samples(tmp_path / 'a', size=128)
  assert set(paths) == {'astronaut', 'coffee', 'chelsea', 'swirls', 'mosaic', 'waves', 'ihc'}
  again = samples.write_samples(tmp_path / 'b', size=128)
  styles = {}
  for name in ('swirls', 'mosaic', 'waves'):
    assert pathlib.Path(paths[name]).read_bytes() == pathlib.Path(again[name]).read_bytes()
    image = images.load_image(paths[name])
    assert image.shape == (128, 128, 3)
    saturation = image.max(axis=-1) - image.min(axis=-1)
    assert saturation.mean() > 0.2, name  # Colourful, not grey.
    texture = np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()
    assert texture > 0.02, name  # Textured, not flat.
    styles[name] = image
  names = list(styles)
  for i, a in enumerate(names):
    for b in names[i + 1 :]:
      assert np.abs(styles[a] - styles[b]).mean() > 0.1, (a, b)
  assert images.load_image(paths['astronaut']).shape == (512, 512, 3)
  other = samples.swirls(64, seed=1)
  assert np.abs(other - samples.swirls(64, seed=0)).mean() > 0.05
