"""The README's screenshot of the streaming viewer mid-stream (docs/viewer_midstream.png).

Builds the page (web/, esbuild), serves it and the bundled sample on loopback
(progs_codec.tools.serve), opens it in Debian's chromium through playwright-core at a slow
throttle and takes a screenshot as soon as LoD ``--lod`` is on screen, before the next level
has arrived. Needs node, chromium and ``npm ci`` in web/. Rerun it when the sample changes:

    python tools/viewer_screenshot.py [--stream examples/plant.progs] [--lod 3] [--mbit 0.25]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from progs_codec.tools.serve import serve_directory  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", default=str(ROOT / "examples" / "plant.progs"),
                        help="the stream (default: the bundled sample)")
    parser.add_argument("--lod", type=int, default=3, help="LoD on screen (default 3)")
    parser.add_argument("--mbit", type=float, default=0.25,
                        help="the page's throttle in Mbit/s (default 0.25)")
    parser.add_argument("--size", default="960x640", help="viewport WxH (default 960x640)")
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "viewer_midstream.png"),
                        help="the PNG to write (default docs/viewer_midstream.png)")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if node is None or not Path(chromium).exists():
        parser.error("needs node and chromium (apt-get install -y chromium)")
    if not (ROOT / "web" / "node_modules" / "playwright-core").is_dir():
        parser.error("run `npm ci` in web/ first")
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        dist = Path(tmp) / "dist"
        subprocess.run([node, str(ROOT / "web" / "tools" / "build_viewer.mjs"), "--outdir", str(dist)],
                       check=True)
        name = Path(args.stream).name
        with serve_directory(dist, files={f"/stream/{name}": args.stream}) as base:
            jobs = {"chromium": chromium, "base": base, "jobs": [
                {"name": "midstream", "kind": "midstream", "lod": args.lod,
                 "viewport": {"width": width, "height": height},
                 "query": f"src=stream/{name}&mbit={args.mbit:g}"}]}
            (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
            out = subprocess.run([node, str(ROOT / "web" / "tools" / "drive_browser.mjs"),
                                  str(Path(tmp) / "jobs.json"), tmp], check=True,
                                 capture_output=True, text=True, cwd=ROOT / "web")
        result = json.loads(out.stdout.strip().splitlines()[-1])["midstream"]
        if "failed" in result or result["status"] == "error":
            print(result, file=sys.stderr)
            return 1
        shutil.copyfile(Path(tmp) / "midstream.png", args.output)
    shown = [lv for lv in result["lods"] if lv["shownAt"] is not None]
    print(f"wrote {args.output}: LoD {shown[-1]['lod']} on screen, {result['received']:,} of "
          f"{result['total']:,} bytes received")
    return 0


if __name__ == "__main__":
    sys.exit(main())
