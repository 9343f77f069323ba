"""Research tools: scoring with a fixed objective, quality-against-time curves, comparison sheets
and sample images. Paths to configs and scripts are arguments, never looked up.

Builds on everything below it.
"""
