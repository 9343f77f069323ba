r"""Writes sample content photographs and procedural painting-like styles as PNG files.

  pip install "nst_jax[samples]"   # scikit-image, for the photographs
  python scripts/make_samples.py --out samples/

Contents: astronaut.png, coffee.png, chelsea.png (scikit-image's bundled photographs). Styles:
style_swirls.png, style_mosaic.png, style_waves.png (drawn by code from --seed) and style_ihc.png
(scikit-image's immunohistochemistry slide). `--photos rocket,retina,...` also writes those
images of scikit-image (`skimage.data`) as `<name>.png`, for the benchmarks' pairs.
"""

from absl import flags

from nst_jax.app import script
from nst_jax.io import paths
from nst_jax.lab import samples

_OUT = flags.DEFINE_string('out', 'samples', 'Output folder (created if missing).')
_SIZE = flags.DEFINE_integer('size', 512, 'Side of the procedural style images, in pixels.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the procedural styles.')
_PHOTOS = flags.DEFINE_list('photos', [], 'Also these skimage.data images, as <name>.png.')


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  paths.check_folder_writable(_OUT.value, '--out')
  written = samples.write_samples(_OUT.value, size=_SIZE.value, seed=_SEED.value)
  written.update(samples.write_photos(_OUT.value, _PHOTOS.value))
  for name, path in written.items():
    print(f'{name}: {path}')


if __name__ == '__main__':
  script.run(main)
