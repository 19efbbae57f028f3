"""Prepare what the GPU run carries: the wheels it needs and the data subset, within 64 MiB.

Run once on a machine with PyPI and ``../shared/data``, from anywhere::

    python training/prepare_gpu_carry.py            # fills .whl/ and .carry/data/, checks
    python training/prepare_gpu_carry.py --check    # only the size check

- ``.whl/``: the packages ``training/gpu_run.sh`` imports that the GPU image lacks (its
  package list: torch, numpy, pillow, jaxtyping, rich, ninja, tqdm are there), as cp312
  manylinux wheels, one version each: :data:`WHEELS`. Nothing else: a wheel pip cannot
  resolve offline stops the whole install.
- ``.carry/data/``: plant (``scenes/plant/plant.ply``, all of ``teacher_views/plant``), donut
  for the rasterizer check (``scenes/donut/donut.ply``, ``teacher_views/donut/
  transforms_test.json``) and ``images/lego_200`` cut to ``--lego-views`` views.

Both folders are git-ignored; the GPU call names them in ``carry``. The check adds the files
that travel anyway (tracked and untracked, not ignored) and fails above 64 MiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LIMIT = 64 * 2**20

#: Exactly the wheels the run installs (``pip download --no-deps``), pinned.
WHEELS = ("gsplat==1.5.3", "constriction==0.5.0", "bitarray==3.12.3", "plyfile==1.1.5")

PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")


def download_wheels(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(folder)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + list(WHEELS), check=True)
    wanted = {w.split("==")[0].replace("-", "_").lower() for w in WHEELS}
    for wheel in folder.glob("*.whl"):     # one version of each, nothing the run does not need
        name, version = wheel.name.split("-")[:2]
        pinned = {w.split("==")[0].replace("-", "_").lower(): w.split("==")[1] for w in WHEELS}
        if name.lower() not in wanted or pinned[name.lower()] != version:
            wheel.unlink()


def copy_data(source: Path, target: Path, lego_views: int) -> None:
    if target.exists():
        shutil.rmtree(target)

    def copy(rel: str) -> None:
        src, dst = source / rel, target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)

    for rel in ("README.md", "scenes/plant/plant.ply", "scenes/plant/LICENSE",
                "teacher_views/plant", "scenes/donut/donut.ply", "scenes/donut/LICENSE",
                "teacher_views/donut/transforms_test.json"):
        if (source / rel).exists():
            copy(rel)
    lego = source / "images" / "lego_200"
    meta = json.loads((lego / "transforms_train.json").read_text())
    frames = meta["frames"][:lego_views]
    out = target / "images" / "lego_200"
    out.mkdir(parents=True)
    for frame in frames:
        rel = frame["file_path"]
        src = lego / rel
        if not src.suffix:
            src = src.with_suffix(".png")
        dst = out / src.relative_to(lego)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    (out / "transforms_train.json").write_text(json.dumps({**meta, "frames": frames}, indent=1))
    for extra in lego.glob("LICENSE*"):
        shutil.copy2(extra, out / extra.name)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check(carried: list[Path]) -> bool:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    tree = sum((REPO / f).stat().st_size for f in listed if f and (REPO / f).is_file())
    sizes = {"working tree (tracked + untracked, not ignored)": tree}
    sizes.update({str(p.relative_to(REPO)): _size(p) for p in carried if p.exists()})
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"{size / 2**20:8.2f} MiB  {name}")
    print(f"{total / 2**20:8.2f} MiB  in all (limit {LIMIT / 2**20:.0f} MiB)")
    return total <= LIMIT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    p.add_argument("--lego-views", type=int, default=40,
                   help="lego_200 training views carried (every 8th is held out; default 40)")
    p.add_argument("--check", action="store_true", help="only check the size")
    p.add_argument("--no-wheels", action="store_true", help="leave .whl/ as it is")
    args = p.parse_args(argv)
    whl, data = REPO / ".whl", REPO / ".carry" / "data"
    if not args.check:
        if not args.no_wheels:
            download_wheels(whl)
        copy_data(args.data, data, args.lego_views)
    ok = check([whl, REPO / ".carry"])
    print("\nThe GPU call (device tool `run`):\n"
          '  command: training/gpu_run.sh "$OUT"\n'
          '  carry: [".whl", ".carry"]\n'
          "  timeout_s: 600")
    if not ok:
        print("OVER THE LIMIT: carry fewer lego views (--lego-views)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
