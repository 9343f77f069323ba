"""The project's own error types.

Every mistake a user can make (a bad image, a bad config, missing weights) raises a subclass of
`NSTError`, whose message is one line naming the input and the problem. `NSTError` is a
`ValueError`, so generic callers can catch that instead. Scripts print the message and exit 2.
"""


class NSTError(ValueError):
  """Base class: a problem with something the user supplied; the message is one line."""


class ImageError(NSTError):
  """An image file cannot be read, or is unsuitable (too small, a decompression bomb, ...)."""


class WeightsError(NSTError):
  """VGG19 weights cannot be fetched, read, verified or matched to the network."""


class ConfigError(NSTError):
  """A config field or flag has an invalid value."""


class NonFiniteLossError(NSTError):
  """A loss term became NaN or infinite; `images` holds the last images with a finite loss and
  `history` (a `nst_jax.run.history.History`, or None) the losses up to the last step run."""

  def __init__(self, message: str, *, images=None, terms: tuple[str, ...] = (), history=None):
    super().__init__(message)
    self.images = images
    self.terms = terms
    self.history = history


class StylizeInterrupted(KeyboardInterrupt):
  """The run was interrupted (Ctrl-C); `images` holds the current images, (B, H, W, 3), and
  `history` the losses up to the last completed step (None before the first chunk ended)."""

  def __init__(self, images, scale: int, step: int, history=None):
    super().__init__(f'interrupted at scale {scale}, step {step}')
    self.images = images
    self.scale = scale
    self.step = step
    self.history = history
