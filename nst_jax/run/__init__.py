"""Running a batch: the config, the engine and its compiled program, the pairs on the devices,
the schedule, targets and guides, memory plan, tiles and optimizers.

Builds on `nst_jax.core` and `nst_jax.io`.
"""
