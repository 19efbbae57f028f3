"""``progs-codec``: the command-line face of the Python API.

Subcommands mirror the functions: ``inspect`` (:func:`progs_codec.inspect`), ``decode``
(:func:`progs_codec.decode`). Errors in the stream print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import ProgsError

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
    from .codec import decode

    model = decode(args.file, max_lod=args.max_lod, strict=args.strict)
    print(f"decoded LoD {model.lod} of {model.frame.num_levels}: "
          f"{model.num_anchors():,} anchors")
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
    p.set_defaults(run=_cmd_decode)
    return parser


def main(argv: list[str] | None = None) -> int:
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
