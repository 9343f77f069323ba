"""Tests for nst_jax.run.memory: the estimate against XLA's buffer assignment at small sizes, the
automatic remat and tiles, and the can't-fit error before compiling."""

import dataclasses
import os

import jax
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import vgg
from nst_jax.lab import memory_suite
from nst_jax.run import engine, memory, optimizers, program

GB = memory.GB


def _program_bytes(prepared) -> float:
  """What XLA allocates for one compiled chunk: arguments, temporaries, outputs not aliased."""
  state = prepared.start_state(0)
  weights = prepared.pair_weights(0, state)
  lowered = prepared.program.run_chunk.lower(prepared.params, state, weights, 2)
  return memory_suite.compiled_bytes(lowered.compile())


def _estimated_program_bytes(prepared) -> float:
  """The plan's estimate without the runtime and the inputs (which XLA does not count)."""
  spec = prepared.program.spec
  work = memory.workload(
    spec.objective,
    prepared.params,
    spec.optimizer,
    prepared.layout,
    spec.groups,
    prepared.sizes,
    [s for styles in prepared.pair_styles.images for s in styles],
    {name: g.shape[-1] for name, g in prepared.guides.items()},
  )
  need = memory.estimate(work, spec.objective.model.remat, getattr(spec.objective, 'tiling', None))
  return need.total - memory.RUNTIME_BYTES - need.parts['inputs']


@pytest.mark.weights
@pytest.mark.parametrize(
  ('size', 'optimizer', 'remat', 'tile_size'),
  [
    (128, 'adam', 'none', -1),
    (160, 'lbfgs', 'blocks_1_3', -1),
  ],
)
def test_estimate_is_within_2x_of_the_compiled_program(
  vgg19_params, astronaut_64, size, optimizer, remat, tile_size
):
  config = nst_jax.default_config()
  config.image_size, config.optim.name = size, optimizer
  config.memory.remat, config.memory.tile_size = remat, tile_size
  config.schedule.chunk_size = 2
  image = astronaut_64[None]
  prepared = engine.prepare(image, [image[0]], config, network=(vgg.VGG19(), vgg19_params))
  measured, estimated = _program_bytes(prepared), _estimated_program_bytes(prepared)
  assert 0.5 < estimated / measured < 2.0, (measured, estimated)


@pytest.mark.parametrize('tile_size', [-1, 32])  # Whole images; 16 windows of 32 px.
def test_estimate_is_within_2x_for_a_shallow_random_network(random_network, tile_size):
  contents, styles = small_pairs()
  config = small_config('image_size=64', f'memory.tile_size={tile_size}')
  prepared = engine.prepare(contents, styles, config, network=random_network)
  assert (
    prepared.plan.tiling is None if tile_size < 0 else prepared.plan.tiling.windows((64, 64)) == 16
  )
  measured, estimated = _program_bytes(prepared), _estimated_program_bytes(prepared)
  assert 0.5 < estimated / measured < 2.0, (measured, estimated)


def _work(size=4096, group=1, optimizer='lbfgs'):
  config = nst_jax.default_config()
  config.optim.name = optimizer
  return memory.Workload(
    size=(size, size),
    pairs=group,
    group=group,
    style_sizes=((size, size),),
    layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu4_2', 'relu5_1'),
    optimizer=optimizers.make_optimizer(config),
    target_bytes=size * size // 64 * 512 * 4,
  )


def test_guides_count_as_inputs():
  work = _work(1024, group=2, optimizer='adam')
  guided = dataclasses.replace(work, guide_channels=3)
  plain, more = memory.estimate(work, 'none', None), memory.estimate(guided, 'none', None)
  # Each of the 2 pairs' guides: 3 float32 channels at 1024 x 1024.
  assert more.parts['inputs'] - plain.parts['inputs'] == 2 * 1024 * 1024 * 3 * 4
  assert more.total > plain.total


def test_auto_plan_is_the_fastest_that_fits():
  config = nst_jax.default_config()
  work = _work(2048, optimizer='adam')
  roomy = memory.plan(config, work, available=100 * GB)
  assert (roomy.remat, roomy.tiling) == ('none', None)
  untiled = {r: memory.estimate(work, r, None).total for r in vgg.REMAT_POLICIES}
  assert untiled['blocks_1_3'] < 0.6 * untiled['none']  # Remat halves the per-pixel memory.
  # Room for remat's whole image, not for none's: remat, untiled.
  tight = memory.plan(config, work, available=untiled['blocks_1_3'] / memory.HEADROOM * 1.01)
  assert tight.remat == 'blocks_1_3' and tight.tiling is None
  # Less: tiles, whose memory follows the window.
  tiny = memory.plan(config, work, available=untiled['blocks_1_3'] / 2)
  assert tiny.tiling is not None and tiny.tiling.exact
  assert tiny.estimate.total <= memory.HEADROOM * untiled['blocks_1_3'] / 2
  config.memory.remat, config.memory.tile_size = 'none', -1
  with pytest.raises(
    nst_jax.ConfigError, match="config.memory.remat='blocks_1_3', config.memory.tile_size=-1"
  ):
    memory.plan(config, work, available=untiled['blocks_1_3'] / memory.HEADROOM * 1.01)


def test_cannot_fit_names_the_need_the_memory_and_the_fields():
  config = nst_jax.default_config()
  config.memory.remat, config.memory.tile_size, config.memory.budget_gb = 'none', -1, 12.0
  with pytest.raises(nst_jax.ConfigError) as info:
    memory.plan(config, _work(4096, group=2, optimizer='adam'))
  message = str(info.value)
  assert message.startswith('4096x4096 with 2 pair(s) per device needs about ')
  assert '12.0 GB is available' in message and 'config.memory.budget_gb=12' in message
  assert 'config.memory.tile_size=' in message and 'config.devices.pair_group_size=1' in message
  # The optimizer's state alone exceeds the memory: say so.
  config.memory.remat, config.memory.tile_size = 'auto', 0
  with pytest.raises(nst_jax.ConfigError, match="config.optim.name='adam' or a smaller"):
    memory.plan(config, _work(8192))


def test_a_size_that_cannot_fit_stops_before_compiling(random_network, caplog):
  contents, styles = small_pairs()
  program.build_program.cache_clear()
  with jax.log_compiles(), caplog.at_level('WARNING'):
    with pytest.raises(nst_jax.ConfigError, match=r'needs about .* GB is available'):
      nst_jax.stylize(
        contents, styles, small_config('memory.budget_gb=0.05'), network=random_network
      )
  assert not any('_run_chunk' in r.getMessage() for r in caplog.records)


def test_available_memory_is_positive_and_at_most_the_machine():
  total = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  assert 0 < memory.available_bytes() <= total


@pytest.mark.parametrize(
  ('field', 'value', 'match'),
  [
    ('remat', 'everything', 'config.memory.remat'),
    ('tile_size', 16, 'config.memory.tile_size=16'),
    ('tile_margin', -2, 'config.memory.tile_margin'),
    ('budget_gb', -1.0, 'config.memory.budget_gb'),
  ],
)
def test_memory_fields_are_validated(field, value, match):
  config = nst_jax.default_config()
  config.memory[field] = value
  with pytest.raises(nst_jax.ConfigError, match=match):
    nst_jax.run.config.validate(config)


def test_auto_choice_is_logged_and_applied(random_network, caplog):
  from absl import logging as absl_logging

  contents, styles = small_pairs()
  absl_logging.set_verbosity(absl_logging.INFO)
  with caplog.at_level('INFO'):
    prepared = engine.prepare(contents, styles, small_config(), network=random_network)
  assert prepared.program.objective.model.remat == 'none'
  assert any("config.memory.remat='auto' chose 'none'" in r.getMessage() for r in caplog.records)
  config = small_config('memory.remat=all_blocks', 'memory.tile_size=-1')
  prepared = engine.prepare(contents, styles, config, network=random_network)
  assert prepared.program.objective.model.remat == 'all_blocks'
