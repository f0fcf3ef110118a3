"""Planar contours of a 2D mask that fill back to exactly that mask, and the even-odd fill that reads them.

Coordinates are continuous pixel indices ``(i, j)``: ``i`` along a row (the column index), ``j`` down the rows,
pixel ``(i, j)``'s centre at integer ``(i, j)``.

**Contour convention.** :func:`mask_polygons` traces the outline of the union of the mask's pixel *squares*:
vertices are pixel corners (half-integer coordinates), edges run along pixel edges, so no pixel centre ever lies
on a contour and filling at pixel centres is unambiguous. Outer boundaries and hole boundaries are separate
polygons with opposite orientations (outer boundaries run i+ along their top edge, holes the other way).
Foreground pixels that touch only at a corner belong to different polygons (4-connectivity), and a boundary that
meets itself at a corner is split there, so every polygon is simple (no vertex visited twice, no crossing);
polygons touch one another at most at corner points. Collinear vertices are dropped.

**Fill rule.** A pixel is inside when a ray from its centre crosses the slice's contours an odd number of times
(even-odd: contours inside others are holes, and islands in holes fill again). With the convention above, the
even-odd fill and the non-zero winding fill of the polygons both give back exactly the mask, for structures of
any size down to one pixel; the polygons' total signed area equals the pixel count.
"""

from __future__ import annotations

import numpy as np

#: Unit steps in (i, j) of the four edge directions. At a saddle corner (two pixels touching diagonally) a walk
#: arriving along direction d leaves along (d + 1) % 4: it stays on the same pixel, keeping the two apart.
_STEP = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}


def mask_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Closed polygons (each (N, 2) float array of (i, j) vertices, not repeating the first) outlining ``mask``.

    ``mask`` is a 2D array indexed [j, i]. See the module notes for the convention.
    """
    m = np.pad(np.asarray(mask, bool), 1)
    width = m.shape[1] + 1  # vertices: corner (x, y) of the padded grid, id = y * width + x
    starts, directions = _boundary_edges(m)
    if starts.size == 0:
        return []
    out_edges: dict[int, list[int]] = {}
    for e, v in enumerate(starts.tolist()):
        out_edges.setdefault(v, []).append(e)
    step_id = {d: s[1] * width + s[0] for d, s in _STEP.items()}
    used = np.zeros(starts.size, bool)
    polygons = []
    for first in range(starts.size):
        if used[first]:
            continue
        loop, e = [], first
        while not used[e]:
            used[e] = True
            loop.append(e)
            d = int(directions[e])
            end = int(starts[e]) + step_id[d]
            following = out_edges[end]
            if len(following) == 2:  # a saddle corner: keep to the pixel we arrived along
                following = [c for c in following if directions[c] == (d + 1) % 4]
            e = following[0]
        vertices = starts[loop]
        for piece in _split_at_repeats(vertices.tolist()):
            polygons.append(_corners(np.array(piece), width))
    return polygons


def _boundary_edges(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start vertex ids and directions (0: i+, 1: j+, 2: i-, 3: j-) of the directed boundary edges of padded ``m``.

    Each foreground pixel's square runs (x, y) -> (x+1, y) -> (x+1, y+1) -> (x, y+1) -> (x, y); an edge shared
    with another foreground pixel cancels, the rest is the boundary (foreground always on the same side).
    """
    width = m.shape[1] + 1
    inside = m[1:-1, 1:-1]
    jj, ii = np.nonzero(inside)
    jj, ii = jj + 1, ii + 1  # padded pixel coordinates; pixel (x, y) has corners x..x+1, y..y+1
    starts, directions = [], []
    for d, (dj, di), corner in ((0, (-1, 0), (0, 0)), (1, (0, 1), (1, 0)), (2, (1, 0), (1, 1)), (3, (0, -1), (0, 1))):
        free = ~m[jj + dj, ii + di]
        x, y = ii[free] + corner[0], jj[free] + corner[1]
        starts.append(y * width + x)
        directions.append(np.full(x.size, d))
    return np.concatenate(starts), np.concatenate(directions)


def _split_at_repeats(vertices: list[int]) -> list[list[int]]:
    """Split a closed vertex loop wherever it revisits a vertex, into simple loops."""
    pieces, path, position = [], [], {}
    for v in vertices:
        if v in position:
            start = position[v]
            pieces.append(path[start:])
            for u in path[start:]:
                del position[u]
            path = path[:start]
        position[v] = len(path)
        path.append(v)
    if path:
        pieces.append(path)
    return pieces


def _corners(loop: np.ndarray, width: int) -> np.ndarray:
    """(i, j) coordinates of a loop's corners (collinear vertices dropped), in the unpadded pixel frame."""
    xy = np.column_stack([loop % width, loop // width]).astype(float)
    before, after = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
    a, b = xy - before, after - xy
    turn = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] != 0
    return xy[turn] - 1.5  # padded corner x sits at unpadded pixel coordinate x - 1 - 0.5


def signed_area(polygon: np.ndarray) -> float:
    """Shoelace area in pixel units (positive for outer boundaries of :func:`mask_polygons`)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def fill_even_odd(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Pixels (array indexed [j, i] of ``shape``) whose centres are inside ``polygons`` by the even-odd rule.

    Each row's centre line j crosses an edge from (i0, j0) to (i1, j1) when min(j0, j1) <= j < max(j0, j1)
    (half-open, so a vertex on the line counts once); pixel i is inside when an odd number of crossings lie
    left of its centre. Polygons may reach outside the image; they are clipped.
    """
    rows, columns = shape
    if not polygons:
        return np.zeros(shape, bool)
    edges = [np.column_stack([p, np.roll(p, -1, axis=0)]) for p in polygons if len(p) >= 3]
    if not edges:
        return np.zeros(shape, bool)
    i0, j0, i1, j1 = np.concatenate(edges).T
    low, high = np.minimum(j0, j1), np.maximum(j0, j1)
    first = np.clip(np.ceil(low), 0, rows).astype(np.int64)
    last = np.clip(np.ceil(high), 0, rows).astype(np.int64)  # rows first .. last-1
    counts = np.maximum(last - first, 0)
    edge = np.repeat(np.arange(i0.size), counts)
    row = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    t = (row - j0[edge]) / (j1[edge] - j0[edge])
    x = i0[edge] + t * (i1[edge] - i0[edge])
    toggle = np.clip(np.floor(x).astype(np.int64) + 1, 0, columns)  # first pixel whose centre lies right of x
    flips = np.bincount(row * (columns + 1) + toggle, minlength=rows * (columns + 1)).reshape(rows, columns + 1)
    return (np.cumsum(flips[:, :columns], axis=1) % 2).astype(bool)
