"""3D shape features: pyradiomics' 14 ``shape`` features, from its own marching-cubes mesh of the mask.

pyradiomics (``cshape.c``) meshes the mask padded by one voxel with a marching-cubes table whose vertices
sit on edge midpoints, sums signed tetrahedra for MeshVolume and triangle areas for SurfaceArea, and takes
the diameters over the mesh vertices (every midpoint between a mask voxel and a face neighbour outside it);
the 2D diameters compare only vertices sharing a z (Slice), y (Column) or x (Row) coordinate. Axis lengths
come from the eigenvalues of the covariance of the voxel centres in mm. The same is done here, vectorised.
"""

from __future__ import annotations

import numpy as np

from medai.features import mc_tables

#: pyradiomics' non-deprecated 3D shape features.
NAMES = ("MeshVolume", "VoxelVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity", "Maximum3DDiameter",
         "Maximum2DDiameterSlice", "Maximum2DDiameterColumn", "Maximum2DDiameterRow", "MajorAxisLength",
         "MinorAxisLength", "LeastAxisLength", "Elongation", "Flatness")

_TRIANGLES = np.full((128, 5, 3), -1, dtype=np.int64)
for _index, _edges in enumerate(mc_tables.TRIANGLES):
    _TRIANGLES[_index, : len(_edges) // 3] = np.reshape(_edges, (-1, 3))
_EDGE_POINTS = np.array(mc_tables.EDGE_POINTS, dtype=float)


def shape_features(mask: np.ndarray, spacing_zyx: np.ndarray) -> dict[str, float]:
    """Shape features of a boolean K,J,I ``mask`` (cropped to its bounding box) with voxel ``spacing_zyx`` in mm."""
    mask = np.pad(np.asarray(mask, dtype=bool), 1)
    spacing = np.asarray(spacing_zyx, dtype=float)
    area, volume = _mesh_area_volume(mask, spacing)
    diameters = _diameters(_mesh_vertices(mask, spacing))
    voxels = np.argwhere(mask) * spacing
    count = len(voxels)
    centred = (voxels - voxels.mean(axis=0)) / np.sqrt(count)
    eigen = np.sort(np.linalg.eigvalsh(centred.T @ centred))
    eigen[(eigen < 0) & (eigen > -1e-10)] = 0  # round-off on flat (2D) masks, as pyradiomics
    least, minor, major = (4 * np.sqrt(e) if e >= 0 else np.nan for e in eigen)
    with np.errstate(invalid="ignore", divide="ignore"):  # one voxel: no axes, NaN ratios (as pyradiomics)
        elongation, flatness = np.sqrt(eigen[1] / eigen[2]), np.sqrt(eigen[0] / eigen[2])
    return {
        "MeshVolume": volume,
        "VoxelVolume": float(count * np.prod(spacing)),
        "SurfaceArea": area,
        "SurfaceVolumeRatio": area / volume,
        "Sphericity": float((36 * np.pi * volume ** 2) ** (1 / 3) / area),
        "Maximum3DDiameter": diameters[3],
        "Maximum2DDiameterSlice": diameters[0],
        "Maximum2DDiameterColumn": diameters[1],
        "Maximum2DDiameterRow": diameters[2],
        "MajorAxisLength": float(major),
        "MinorAxisLength": float(minor),
        "LeastAxisLength": float(least),
        "Elongation": float(elongation),
        "Flatness": float(flatness),
    }


def _mesh_area_volume(mask: np.ndarray, spacing: np.ndarray) -> tuple[float, float]:
    """(SurfaceArea mm², MeshVolume mm³) of pyradiomics' marching-cubes mesh of the padded ``mask``."""
    nz, ny, nx = (n - 1 for n in mask.shape)
    index = np.zeros((nz, ny, nx), dtype=np.int64)
    for bit, (cz, cy, cx) in enumerate(mc_tables.CORNERS):
        index |= mask[cz:cz + nz, cy:cy + ny, cx:cx + nx].astype(np.int64) << bit
    flipped = (index & 0x80) != 0
    index[flipped] ^= 0xFF
    cubes = np.argwhere(index > 0)
    if not len(cubes):
        return 0.0, 0.0
    kinds = index[tuple(cubes.T)]
    signs = np.where(flipped[tuple(cubes.T)], -1.0, 1.0)
    edges = _TRIANGLES[kinds]  # (cubes, 5, 3)
    present = edges[:, :, 0] >= 0
    cube_of = np.broadcast_to(np.arange(len(cubes))[:, None], present.shape)[present]
    corners = (cubes[cube_of][:, None, :] + _EDGE_POINTS[edges[present]]) * spacing  # (triangles, 3, 3)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    volume = np.sum(signs[cube_of] * np.einsum("ij,ij->i", np.cross(a, b), c)) / 6
    area = np.sum(0.5 * np.linalg.norm(np.cross(a - c, b - c), axis=1))
    return float(area), float(volume)


def _mesh_vertices(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Mesh vertices (N,3) in mm: midpoints between each mask voxel and each face neighbour outside it."""
    points = []
    for axis in range(3):
        ahead = [slice(None)] * 3
        behind = [slice(None)] * 3
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        crossing = np.argwhere(mask[tuple(ahead)] != mask[tuple(behind)]).astype(float)
        crossing[:, axis] += 0.5
        points.append(crossing * spacing)
    return np.concatenate(points)


def _diameters(points: np.ndarray) -> list[float]:
    """[Slice (same z), Column (same y), Row (same x), 3D] largest vertex distances, as pyradiomics pairs them."""
    result = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        ends = _line_ends(points[:, [axis, *others]])  # plane, then the two in-plane coordinates
        planes = np.flatnonzero(np.diff(ends[:, 0])) + 1
        best = 0.0
        for plane in np.split(ends[:, 1:], planes):  # the shared coordinate adds 0 to every distance
            best = max(best, _max_distance(plane))
        result.append(best)
    result.append(_max_distance(_line_ends(points)))
    return result


def _line_ends(points: np.ndarray) -> np.ndarray:
    """The two end points of each line of ``points`` along the last coordinate (grouped by the others), sorted
    by the other coordinates. A point between two others of its line is never a convex-hull vertex, so no
    farthest pair is lost."""
    order = np.lexsort(points.T[::-1])
    ordered = points[order]
    new_line = np.any(np.diff(ordered[:, :-1], axis=0) != 0, axis=1)
    starts = np.concatenate([[0], np.flatnonzero(new_line) + 1])
    stops = np.concatenate([starts[1:] - 1, [len(ordered) - 1]])
    return ordered[np.unique(np.concatenate([starts, stops]))]


def _max_distance(points: np.ndarray) -> float:
    """Largest distance between two of ``points``: the farthest pair lies on the convex hull, so only hull
    vertices are compared (exactly as pyradiomics' all-pairs loop, which is quadratic in the vertex count)."""
    candidates = points[_extreme_indices(points)] if len(points) > 64 else points  # few: all pairs are cheap
    best = 0.0
    for start in range(0, len(candidates), 512):
        block = candidates[start:start + 512]
        squared = np.sum((block[:, None, :] - candidates[None, :, :]) ** 2, axis=2)
        best = max(best, float(squared.max()))
    return float(np.sqrt(best))


def _extreme_indices(points: np.ndarray) -> np.ndarray:
    """Indices of the convex-hull vertices of ``points``; a flat or straight set is hulled in the affine span
    it really has (Qhull refuses degenerate input)."""
    if len(points) <= points.shape[1]:
        return np.arange(len(points))
    from scipy.spatial import ConvexHull, QhullError

    try:
        return ConvexHull(points).vertices
    except QhullError:
        pass  # a flat or straight set: hulled below in the affine span it really has
    centred = points - points.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * 1e-9)) if singular[0] > 0 else 0
    if rank == 0:
        return np.arange(1)
    projected = centred @ axes[:rank].T
    if rank == 1:
        return np.array([np.argmin(projected[:, 0]), np.argmax(projected[:, 0])])
    return _extreme_indices(projected)
