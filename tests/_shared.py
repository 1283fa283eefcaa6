"""What the test files share: what this build and machine have, and the marks that skip on it.

Import from here (``from _shared import BACKENDS, needs_cpu``); conftest.py's names are not
importable. conftest.py skips every test marked ``gpu`` when there is no CUDA device, so
``@pytest.mark.gpu`` alone is enough for a GPU test."""
import pytest

from forse import _dispatch

HAS_CPU = _dispatch.has_cpu()  # the compiled core (forse._core) is built
HAS_CUDA_BUILD = _dispatch.has_cuda_build()
HAS_CUDA_DEVICE = _dispatch.has_cuda_device()

#: the backends every machine runs: the numpy reference and, when built, the C++ core
BACKENDS = ["numpy"] + (["cpu"] if HAS_CPU else [])

needs_cpu = pytest.mark.skipif(not HAS_CPU, reason="compiled core not built")
without_cuda_build = pytest.mark.skipif(HAS_CUDA_BUILD, reason="this build has CUDA")
