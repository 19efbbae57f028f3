"""Structure bits per anchor on the real scenes' octrees (issue 2 baseline).

Anchors come from voxelizing the Gaussian centres of ../shared/data/scenes/*/*.ply at several
base depths (5 levels). Prints, per scene and depth, the anchors per level and the bits per
anchor of the fixed 20+3 layout (spec 4.3-4.4), the order-0 entropy of each parent's 8-bit
child-occupancy mask, and what the occupancy layout (spec 4.6) really writes, histogram
included, for the non-root levels and for all levels.

    python benchmarks/bench_structure.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData

from progs_codec.build import frame_for_points, octree_from_points
from progs_codec.format.occupancy import children_masks, virtual_masks, write_occupancy
from progs_codec.format.structure import children_length, levels_from_coords, roots_length

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes"


def occupancy_entropy_bits(parents: np.ndarray, children: np.ndarray) -> float:
    """Order-0 entropy (bits) of the child-occupancy masks of ``parents``."""
    parent_of = children >> 1
    octant = (children[:, 0] & 1) << 2 | (children[:, 1] & 1) << 1 | (children[:, 2] & 1)
    keys = (parent_of[:, 0] << 42) | (parent_of[:, 1] << 21) | parent_of[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    masks = np.zeros(len(unique), np.int64)
    np.bitwise_or.at(masks, inverse, 1 << octant)
    counts = np.bincount(masks, minlength=256)[1:]
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum() * len(masks))


def _no_attributes(n: int) -> dict[str, np.ndarray]:
    return {"feature": np.zeros((n, 1)), "scaling": np.zeros((n, 0)),
            "offsets": np.zeros((n, 1, 3))}


def main() -> None:
    print(f"{'scene':8} {'D':>2} {'anchors per level':>40} {'fixed b/anchor':>15} "
          f"{'non-root':>9} {'occupancy H0':>13} {'occ. layout':>12} {'all levels':>11}")
    for ply in sorted(DATA.glob("*/*.ply")):
        vertex = PlyData.read(str(ply))["vertex"]
        points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
        for base_depth in (4, 5, 6):
            frame = frame_for_points(points, base_depth, 5)
            levels = [c.astype(np.int64) for c in octree_from_points(points, frame)]
            counts = [len(c) for c in levels]
            fixed = roots_length(counts[0], base_depth) + sum(children_length(n) for n in counts[1:])
            non_root = sum(counts[1:])
            entropy = sum(occupancy_entropy_bits(levels[k], levels[k + 1])
                          for k in range(len(levels) - 1))
            linked = levels_from_coords(levels, base_depth, [_no_attributes(len(c)) for c in levels])
            coded = [8 * len(write_occupancy(children_masks(child.parent_index, child.octant,
                                                            len(parent))))
                     for parent, child in zip(linked, linked[1:])]
            roots = 8 * min(len(write_occupancy(virtual_masks(levels[0], base_depth))),
                            roots_length(counts[0], base_depth))
            print(f"{ply.stem:8} {base_depth:>2} {str(counts):>40} "
                  f"{8 * fixed / sum(counts):>15.2f} {8 * children_length(non_root) / non_root:>9.2f} "
                  f"{entropy / non_root:>13.2f} {sum(coded) / non_root:>12.2f} "
                  f"{(sum(coded) + roots) / sum(counts):>11.2f}")


if __name__ == "__main__":
    main()
