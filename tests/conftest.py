"""Shared test setup. The names test files import (backends, skip marks, helpers) live in
_shared.py, since conftest's names are not importable; this file holds the hooks."""
import pytest

from _shared import HAS_CUDA_DEVICE
from gan_data import data  # noqa: F401 (the tiny training-set fixture, for every test module)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip without a CUDA build and device (``-m gpu`` selects them)."""
    if HAS_CUDA_DEVICE:
        return
    skip = pytest.mark.skip(reason="needs a CUDA build and device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
