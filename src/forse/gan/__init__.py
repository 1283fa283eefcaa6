"""The ForSE generative adversarial network (Keras 3, TensorFlow backend).

* :func:`build_generator`, :func:`build_discriminator`: the ForSE DCGAN networks.
* :func:`load_generator`: a saved generator (``.keras`` + JSON card) by path or bundled name
  (``"dust-T"``, ``"dust-Q"``, ``"dust-U"``).
* :func:`generate`: rescaled low-resolution patches -> small-scale patches in [-1, 1], with
  optional seeded stochastic realizations (ForSE+ input noise).
* :func:`train` / :class:`TrainConfig`: resumable, seeded adversarial training (``forse train``).
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter quiet

from .models import BUNDLED, Generator, add_input_noise, generate, load_generator, make_card, save_generator  # noqa: E402
from .networks import build_discriminator, build_generator  # noqa: E402
from .train import TrainConfig, train  # noqa: E402

__all__ = ["BUNDLED", "Generator", "TrainConfig", "add_input_noise", "build_discriminator",
           "build_generator", "generate", "load_generator", "make_card", "save_generator", "train"]
