"""Grey Level Co-occurrence Matrix features: pyradiomics' 24 ``glcm`` features with its definitions.

As pyradiomics: one matrix per direction (13 in 3D at distance 1), symmetrical (P + Pᵀ), restricted to the
grey levels present in the ROI, directions without any pair dropped, each normalised to sum 1; every feature
is computed per direction and averaged over directions.
"""

from __future__ import annotations

import itertools

import numpy as np

#: pyradiomics' non-deprecated GLCM features.
NAMES = ("Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
         "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy",
         "JointEntropy", "Imc1", "Imc2", "Idm", "MCC", "Idmn", "Id", "Idn", "InverseVariance",
         "MaximumProbability", "SumAverage", "SumEntropy", "SumSquares")


def directions(size: tuple[int, ...], distances: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One offset of each ± pair at infinity-norm distance in ``distances``, fitting an image of ``size``."""
    result = []
    for d in sorted(set(distances)):
        for offset in itertools.product(range(-d, d + 1), repeat=len(size)):
            if max(map(abs, offset)) != d or offset < tuple(-o for o in offset):
                continue  # another distance, or the mirror of an offset kept
            if all(abs(o) < n for o, n in zip(offset, size)):
                result.append(offset)
    return result


def cooccurrence(levels: np.ndarray, mask: np.ndarray, distances: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(P, grey levels): normalised symmetrical matrices (Ng', Ng', directions) over the present ``levels``."""
    present = np.unique(levels[mask])
    lookup = np.zeros(levels.max() + 1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    code = np.where(mask, lookup[levels], -1)
    n = len(present)
    matrices = []
    for offset in directions(mask.shape, distances):
        here = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, mask.shape))
        there = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(offset, mask.shape))
        a, b = code[here], code[there]
        pair = (a >= 0) & (b >= 0)
        counts = np.bincount(a[pair] * n + b[pair], minlength=n * n).reshape(n, n).astype(float)
        counts += counts.T
        if counts.sum() > 0:
            matrices.append(counts / counts.sum())
    if not matrices:
        return np.zeros((n, n, 0)), present
    return np.stack(matrices, axis=2), present


def glcm_features(levels: np.ndarray, mask: np.ndarray, distances: tuple[int, ...] = (1,)) -> dict[str, float]:
    """GLCM features of discretised ``levels`` (K,J,I ints >= 1 inside ``mask``) averaged over directions."""
    p, grey = cooccurrence(levels, mask, distances)
    if p.shape[2] == 0:  # a single voxel: no pair in any direction
        return {name: float("nan") for name in NAMES}
    eps = np.spacing(1)
    ng = int(grey.max())
    i = grey.astype(float)[:, None, None]
    j = grey.astype(float)[None, :, None]
    px = p.sum(axis=1, keepdims=True)  # (Ng', 1, A)
    py = p.sum(axis=0, keepdims=True)  # (1, Ng', A)
    ux = np.sum(i * p, axis=(0, 1))
    uy = np.sum(j * p, axis=(0, 1))
    total = (i + j)[:, :, 0].astype(int)
    difference = np.abs(i - j)[:, :, 0].astype(int)
    sums = np.stack([np.bincount(total.ravel(), p[:, :, a].ravel(), 2 * ng + 1)[2:] for a in range(p.shape[2])], 1)
    diffs = np.stack([np.bincount(difference.ravel(), p[:, :, a].ravel(), ng)[:ng] for a in range(p.shape[2])], 1)
    k_sum = np.arange(2, 2 * ng + 1, dtype=float)[:, None]
    k_diff = np.arange(ng, dtype=float)[:, None]
    hxy = -np.sum(p * np.log2(p + eps), axis=(0, 1))
    centred_sum = i + j - ux - uy
    sigx = np.sqrt(np.sum(p * (i - ux) ** 2, axis=(0, 1)))
    sigy = np.sqrt(np.sum(p * (j - uy) ** 2, axis=(0, 1)))
    correlation = np.sum(p * (i - ux) * (j - uy), axis=(0, 1)) / (sigx * sigy + eps)
    correlation[sigx * sigy == 0] = 1
    diff_average = np.sum(k_diff * diffs, axis=0)
    hx = -np.sum(px * np.log2(px + eps), axis=(0, 1))
    hy = -np.sum(py * np.log2(py + eps), axis=(0, 1))
    hxy1 = -np.sum(p * np.log2(px * py + eps), axis=(0, 1))
    hxy2 = -np.sum(px * py * np.log2(px * py + eps), axis=(0, 1))
    div = np.fmax(hx, hy)
    imc1 = np.where(div != 0, (hxy - hxy1) / np.where(div != 0, div, 1), 0.0)
    imc2 = np.sqrt(1 - np.exp(-2 * (hxy2 - hxy)))
    imc2[hxy2 == hxy] = 0
    values = {
        "Autocorrelation": np.sum(p * i * j, axis=(0, 1)),
        "JointAverage": ux,
        "ClusterProminence": np.sum(p * centred_sum ** 4, axis=(0, 1)),
        "ClusterShade": np.sum(p * centred_sum ** 3, axis=(0, 1)),
        "ClusterTendency": np.sum(p * centred_sum ** 2, axis=(0, 1)),
        "Contrast": np.sum(p * (i - j) ** 2, axis=(0, 1)),
        "Correlation": correlation,
        "DifferenceAverage": diff_average,
        "DifferenceEntropy": -np.sum(diffs * np.log2(diffs + eps), axis=0),
        "DifferenceVariance": np.sum(diffs * (k_diff - diff_average) ** 2, axis=0),
        "JointEnergy": np.sum(p ** 2, axis=(0, 1)),
        "JointEntropy": hxy,
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": np.sum(diffs / (1 + k_diff ** 2), axis=0),
        "MCC": _mcc(p, px, py, eps),
        "Idmn": np.sum(diffs / (1 + k_diff ** 2 / ng ** 2), axis=0),
        "Id": np.sum(diffs / (1 + k_diff), axis=0),
        "Idn": np.sum(diffs / (1 + k_diff / ng), axis=0),
        "InverseVariance": np.sum(diffs[1:] / k_diff[1:] ** 2, axis=0),
        "MaximumProbability": p.max(axis=(0, 1)),
        "SumAverage": np.sum(k_sum * sums, axis=0),
        "SumEntropy": -np.sum(sums * np.log2(sums + eps), axis=0),
        "SumSquares": np.sum(p * (i - ux) ** 2, axis=(0, 1)),
    }
    return {name: float(np.real(np.nanmean(values[name]))) for name in NAMES}


def _mcc(p: np.ndarray, px: np.ndarray, py: np.ndarray, eps: float) -> np.ndarray:
    """Maximal Correlation Coefficient per direction: √(second largest eigenvalue of Q), 1 for one grey level.

    Q[i, j] = Σ_k p(i,k) p(j,k) / (px(i) py(k)); eigenvalues sorted as numpy sorts them (complex ones by real
    part), as pyradiomics does.
    """
    if p.shape[0] < 2:
        return np.ones(p.shape[2])
    weighted = p / (px[:, 0, None, :] * py[0, None, :, :] + eps)  # p(i,k) / (px(i) py(k))
    q = np.einsum("ika,jka->aij", weighted, p)
    eigen = np.sort(np.linalg.eigvals(q), axis=1)
    return np.sqrt(eigen[:, -2])
