"""``progs-codec``: the command-line face of the Python API.

Subcommands mirror the functions: ``inspect`` (:func:`progs_codec.inspect`), ``decode``
(:func:`progs_codec.decode`, and with ``-o`` :func:`progs_codec.render.bake.export_splats`),
``render`` (:func:`progs_codec.render.render_orbit`), ``conformance run``
(:func:`progs_codec.tools.conformance.run_suite`). Errors in the stream or the request print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ProgsError
from ..version import __version__

__all__ = ["main"]


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import format_info, inspect

    info = inspect(args.file)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(format_info(info))
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from ..codec import decode

    model = decode(args.file, max_lod=args.max_lod, strict=args.strict)
    print(f"decoded LoD {model.lod} of {model.frame.num_levels}: "
          f"{model.num_anchors():,} anchors")
    if args.output:
        from ..render.bake import export_splats

        splats = export_splats(model, args.output, sh_degree=args.sh_degree)
        print(f"wrote {args.output}: {len(splats):,} Gaussians, SH degree {splats.sh_degree}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from ..codec import decode
    from ..render.images import render_orbit

    model = decode(args.file, max_lod=max(args.lod) if args.lod else None)
    paths = render_orbit(model, lods=args.lod, n_views=args.orbit, size=args.size,
                         out_dir=args.output, backend=args.backend)
    print(f"wrote {len(paths) - 1} views and {paths[-1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="progs-codec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("inspect", help="bit allocation per chunk, level and group")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    p.set_defaults(run=_cmd_inspect)

    p = commands.add_parser("decode", help="decode a stream up to a LoD")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--max-lod", type=int, default=None, help="decode levels 1..K (default all)")
    p.add_argument("--strict", action="store_true", help="a stream that stops short is an error")
    p.add_argument("-o", "--output", help="bake to a static 3DGS file: .ply, .spz or .splat")
    p.add_argument("--sh-degree", type=int, default=None,
                   help="SH degree of the baked colours (default 3; 0 for .splat)")
    p.set_defaults(run=_cmd_decode)

    p = commands.add_parser("render", help="render an orbit per LoD to PNGs and a contact sheet")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--lod", type=int, nargs="+", default=None,
                   help="LoDs to render (default: every decoded LoD)")
    p.add_argument("--orbit", type=int, default=8, help="views per LoD (default 8)")
    p.add_argument("--size", type=int, default=256, help="image width and height (default 256)")
    p.add_argument("--backend", choices=("auto", "cpu", "gsplat"), default="auto")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.set_defaults(run=_cmd_render)

    # Listed for --help only: main() hands "conformance run ..." to the runner's own parser.
    p = commands.add_parser("conformance", help="run the conformance suite against a decoder: "
                            "conformance run --decoder CMD [--results out.json] ...")
    p.add_argument("action", choices=["run"])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["conformance", "run"]:
        from . import conformance

        return conformance.main(argv[2:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ProgsError as error:
        print(f"progs-codec {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"progs-codec {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
