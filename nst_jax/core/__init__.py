"""The mathematics of style transfer: the network, the losses, the terms and the objective.

Pure functions and frozen dataclasses only: no files, flags or logging. Imports nothing from the
other layers of nst_jax (`io`, `run`, `app`, `lab`).
"""
