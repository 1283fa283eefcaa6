"""Patch layouts: sizes, ranges, and coverage of every Nside-2048 pixel with positive weight."""
import numpy as np
import pytest

from _shared import needs_cpu
from forse import projection, tiling


def test_regular_is_forse_grid():
    lon, lat = tiling.regular()
    assert lon.shape == lat.shape == (312,)
    assert np.array_equal(np.unique(lat), np.arange(-90.0, 91.0, 15.0))
    assert np.array_equal(np.unique(lon), np.arange(0.0, 360.0, 15.0))


def test_adaptive_fewer_towards_poles():
    lon, lat = tiling.adaptive()
    assert lon.size < 312
    per_ring = {b: int(np.sum(lat == b)) for b in np.unique(lat)}
    assert per_ring[90.0] == per_ring[-90.0] == 1
    counts = [per_ring[b] for b in sorted(per_ring) if b >= 0]
    assert counts == sorted(counts, reverse=True)
    assert np.all((lon >= 0) & (lon < 360)) and np.all(np.abs(lat) <= 90)


@pytest.mark.parametrize("layout", [tiling.regular, tiling.adaptive])
def test_other_sizes(layout):
    lon, lat = layout(size_deg=10.0, overlap_deg=2.0)
    assert lon.size > layout()[0].size
    assert lat.min() == -90 and lat.max() == 90


@pytest.mark.parametrize("layout", [tiling.regular, tiling.adaptive])
def test_bad_sizes(layout):
    with pytest.raises(ValueError, match="size_deg"):
        layout(size_deg=0.0)
    with pytest.raises(ValueError, match="size_deg"):
        layout(size_deg=120.0)
    with pytest.raises(ValueError, match="overlap_deg"):
        layout(size_deg=20.0, overlap_deg=20.0)
    with pytest.raises(ValueError, match="overlap_deg"):
        layout(size_deg=20.0, overlap_deg=-1.0)


@needs_cpu
@pytest.mark.parametrize("layout", [tiling.regular, tiling.adaptive])
def test_coverage_nside2048(layout):
    """Every Nside-2048 pixel centre is inside a 20 deg patch (320 px of 3.75') where the default
    taper window is positive: the back-projection's weight map is positive everywhere."""
    lon, lat = layout()
    ones = np.ones((lon.size, 320, 320), dtype=np.float32)
    m, w = projection.patches_to_healpix(ones, lon, lat, 2048, 3.75, return_weights=True,
                                         interpolation="bilinear", backend="cpu")
    assert w.shape == (12 * 2048**2,)
    uncovered = int(np.sum(~(w > 0)))
    assert uncovered == 0, f"{uncovered} pixels have zero weight (min weight {w.min()})"
    assert np.allclose(m, 1.0, rtol=1e-6)
