"""The command-line tools' library side: the commands, flags and exit codes, progress display,
workdir records, multi-host set-up and image sheets.

Builds on `nst_jax.run` and below; `scripts/*.py` are thin wrappers around it.
"""
