"""Where the inputs are found and the outputs go: file names, planned and checked before a run.

Files written next to an output `out.png`: `out.step0050.png` (intermediate images, `--save_every`),
`out.interrupted.png` (Ctrl-C) and `out.last_finite.png` (non-finite loss).
"""

import os
import pathlib
import re
from collections.abc import Sequence

from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import files, images

# Extensions of the files `--content_dir` picks up.
IMAGE_EXTENSIONS = (*images.SAVE_FORMATS, '.gif')


def content_paths(contents: Sequence[str] = (), content_dir: str | None = None) -> list[str]:
  """`--content` files, then the image files of `--content_dir` in name order."""
  paths = [c for c in contents if c]
  if content_dir:
    folder = pathlib.Path(content_dir)
    if not folder.is_dir():
      what = 'not a folder' if folder.exists() else 'folder not found'
      raise ImageError(f'--content_dir {content_dir!r}: {what}')
    found = sorted(
      p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not found:
      raise ImageError(
        f'--content_dir {content_dir!r}: no image files ({", ".join(IMAGE_EXTENSIONS)})'
      )
    paths += [str(p) for p in found]
  if not paths:
    raise ConfigError('no content image: give --content FILE[,FILE...] or --content_dir DIR')
  return paths


def is_folder_name(output: str) -> bool:
  """Whether `--output` names a folder: an existing one, a path ending in '/', or no extension."""
  return output.endswith(('/', os.sep)) or os.path.isdir(output) or not pathlib.Path(output).suffix


def output_paths(output: str, contents: Sequence[str]) -> list[pathlib.Path]:
  """Where each content's result goes, following `--output`.

  * a pattern with `{content}` (the content file's name without extension) and/or `{index}`
    (its position, from 0), e.g. `out/{content}_swirls.jpg`: one file per content;
  * a folder (an existing folder, a path ending in '/', or a name without extension), e.g.
    `out/`: `out/<content>.png` for each content;
  * a file name with an image extension, e.g. `out.png`: only for a single content.
  """
  if not output:
    raise ConfigError('--output is empty')
  stems = [pathlib.Path(c).stem for c in contents]
  if re.search(r'\{[^{}]*\}', output):
    try:
      paths = [pathlib.Path(output.format(content=s, index=i)) for i, s in enumerate(stems)]
    except (KeyError, IndexError, ValueError) as e:
      raise ConfigError(
        f'--output {output!r}: bad pattern ({e}); use {{content}} and/or {{index}}'
      ) from None
  elif is_folder_name(output):
    paths = [pathlib.Path(output) / f'{s}.png' for s in stems]
  elif len(contents) > 1:
    raise ConfigError(
      f'--output {output!r} names one file but there are {len(contents)} content images; give '
      f'a folder (e.g. {str(pathlib.Path(output).with_suffix(""))!r}) or a pattern such as '
      f'{str(pathlib.Path(output).parent / ("{content}" + pathlib.Path(output).suffix))!r}'
    )
  else:
    paths = [pathlib.Path(output)]
  _check_distinct(paths, contents, 'content image')
  return paths


def _check_distinct(paths: Sequence[pathlib.Path], inputs: Sequence[str], what: str) -> None:
  seen: dict[str, int] = {}
  for i, path in enumerate(paths):
    key = os.path.realpath(path)
    if key in seen:
      raise ConfigError(
        f'{what}s {inputs[seen[key]]!r} and {inputs[i]!r} would both be written to '
        f'{str(path)!r}; rename one, or use an --output pattern with {{index}}'
      )
    seen[key] = i


def sibling(path: pathlib.Path, tag: str, suffix: str | None = None) -> pathlib.Path:
  """`out.png` -> `out.<tag>.png` (or with `suffix`), in the same folder."""
  return path.with_name(f'{path.stem}.{tag}{path.suffix if suffix is None else suffix}')


def check_not_inputs(outputs: Sequence[os.PathLike], inputs: Sequence[str]) -> None:
  """Refuses to write any of `outputs` over one of the run's own input files."""
  resolved = {os.path.realpath(p): p for p in inputs}
  for output in outputs:
    source = resolved.get(os.path.realpath(output))
    if source is None and os.path.exists(output):
      source = next((p for p in inputs if os.path.exists(p) and os.path.samefile(p, output)), None)
    if source is not None:
      raise ConfigError(
        f'output {os.fspath(output)!r} would overwrite the input image {source!r}; '
        'choose another --output'
      )


def check_folder_writable(folder: str | os.PathLike, label: str) -> None:
  """Raises `ConfigError` unless `folder` is, or can be created as, a writable folder."""
  path = pathlib.Path(folder)
  if path.exists() and not path.is_dir():
    raise ConfigError(f'{label} {os.fspath(folder)!r}: is a file, not a folder')
  problem = files.folder_problem(path, 'it')
  if problem:
    raise ConfigError(f'{label} {os.fspath(folder)!r}: {problem}')


def grid_cell_paths(
  output: str | os.PathLike, contents: Sequence[str], styles: Sequence[str]
) -> list[list[pathlib.Path]]:
  """`grid_cells/<content>__<style>.png` next to the grid, for every content and style."""
  folder = pathlib.Path(output).parent / 'grid_cells'
  for what, paths in (('content', contents), ('style', styles)):
    stems: dict[str, str] = {}
    for path in paths:
      stem = pathlib.Path(path).stem
      if stem in stems:
        raise ConfigError(
          f'{what} images {stems[stem]!r} and {path!r} have the same name {stem!r}, so their '
          f'grid cells would collide; rename one'
        )
      stems[stem] = path
  return [
    [folder / f'{pathlib.Path(c).stem}__{pathlib.Path(s).stem}.png' for s in styles]
    for c in contents
  ]
