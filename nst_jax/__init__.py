"""nst_jax: batched, sharded neural style transfer in JAX."""
