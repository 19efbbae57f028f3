"""``progs-codec``: the command-line face of the Python API.

Subcommands mirror the functions: ``inspect`` (:func:`progs_codec.inspect`), ``decode``
(:func:`progs_codec.decode`, and with ``-o`` :func:`progs_codec.render.bake.export_splats`),
``render`` (:func:`progs_codec.render.render_orbit`), ``truncate``
(:func:`progs_codec.truncate`), ``view`` (the streaming browser viewer of ``web/`` on a
loopback server, :mod:`progs_codec.tools.serve`), ``conformance run``
(:func:`progs_codec.tools.conformance.run_suite`).

A user's mistake never prints a traceback: argparse checks every value (usage line, status
2), outputs are checked before any decoding (status 2 for a wrong suffix or option, 1 for a
folder that does not exist), and errors in the stream print one line with status 2.
``SIGTERM`` and ``Ctrl-C`` stop a write without leaving a partial file (status 130/143).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys

from ..errors import ProgsError
from ..version import __version__

__all__ = ["main", "build_parser"]


def _integer(low: int, high: int | None = None):
    """An argparse type: an integer in ``low..high`` (no upper bound when ``high`` is None)."""
    allowed = f"{low} or more" if high is None else f"{low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, {allowed}, got "
                                             f"{text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value
    return parse


_positive_int = _integer(1)
_sh_degree = _integer(0, 3)
_count = _integer(0)
_port = _integer(0, 65535)


def _elevation(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not -90.0 < value < 90.0:
        raise argparse.ArgumentTypeError(f"must be an angle in degrees between -90 and 90 "
                                         f"(exclusive), got {text!r}")
    return value


def _up(text: str) -> tuple[float, float, float]:
    from ..render.images import RenderError, parse_up

    try:
        return parse_up(text)
    except RenderError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _mbit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a bandwidth in Mbit/s above 0, got {text!r}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 <= value <= 60_000):
        raise argparse.ArgumentTypeError(f"expected milliseconds 0..60000, got {text!r}")
    return value


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _lod_summary(model) -> str:
    """``LoD 3 of 5: 134 LoD anchors (level anchors 8 + 21 + 105)``."""
    per_level = " + ".join(f"{len(level):,}" for level in model.levels)
    return (f"LoD {model.lod} of {model.frame.num_levels}: {model.num_anchors():,} LoD anchors "
            f"(level anchors {per_level})")


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import format_info, inspect

    if args.plot:  # before the work, like every output
        from .plot import check_plot_output

        check_plot_output(args.plot)
    info = inspect(args.file)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(format_info(info))
    if args.plot:
        from .plot import plot_bit_allocation

        plot_bit_allocation(info, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _check_decode_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Option combinations argparse cannot see, in the words of the command line."""
    suffix = os.path.splitext(args.output or "")[1].lower()
    if args.sh_degree is not None and not args.output:
        parser.error("--sh-degree applies to the baked file: give -o OUT.ply, .spz or .splat")
    if suffix == ".splat" and args.sh_degree:
        parser.error(f"--sh-degree {args.sh_degree}: .splat files hold no SH bands above "
                     f"degree 0; use --sh-degree 0, or write .ply or .spz")


def _cmd_decode(args: argparse.Namespace) -> int:
    from ..codec import Decoder, read_stream

    if args.output:  # before decoding: a wrong suffix or option costs no time
        from ..render.splats import check_splats_output

        check_splats_output(args.output, args.sh_degree)
    decoder = Decoder(max_lod=args.max_lod, strict=args.strict, **_limits(args))
    decoder.feed(read_stream(args.file))
    model = decoder.close()
    print(f"decoded {_lod_summary(model)}")
    if not decoder.done:
        print(f"the stream stops inside {decoder.describe_pending()}")
    if args.output:
        from ..render.bake import export_splats

        splats = export_splats(model, args.output, sh_degree=args.sh_degree)
        print(f"wrote {args.output}: {len(splats):,} Gaussians, SH degree {splats.sh_degree}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from ..codec import decode
    from ..render.images import check_output_dir, render_orbit

    check_output_dir(args.output)
    model = decode(args.file, max_lod=max(args.lod) if args.lod else None, **_limits(args))
    paths = render_orbit(model, lods=args.lod, n_views=args.orbit, size=args.size,
                         out_dir=args.output, backend=args.backend,
                         elevation_deg=args.elevation, up=args.up)
    print(f"wrote {_plural(len(paths) - 1, 'view')} and {paths[-1]}")
    return 0


def _cmd_truncate(args: argparse.Namespace) -> int:
    from ..files import check_output_file, write_atomic
    from .truncate import truncate

    if os.path.exists(args.output) and os.path.samefile(args.file, args.output):
        raise ProgsError(f"-o {args.output} would overwrite its input; write another file")
    check_output_file(args.output)
    with open(args.file, "rb") as f:
        data = f.read()
    cut = truncate(data, args.max_lod)
    write_atomic(args.output, cut)
    from .inspect import inspect

    info = inspect(cut)
    print(f"wrote {args.output}: LoD {len(info.levels)} of {len(info.levels)} "
          f"({info.levels[-1].lod_anchors:,} LoD anchors), {len(cut):,} of {len(data):,} bytes")
    return 0


def _limits(args: argparse.Namespace) -> dict:
    """``max_anchors`` and ``max_values`` of the decoder; 0 on the command line is no limit."""
    return {name: getattr(args, name) or None for name in ("max_anchors", "max_values")}


def _add_limits(p: argparse.ArgumentParser) -> None:
    from ..codec import DEFAULT_MAX_ANCHORS, DEFAULT_MAX_VALUES

    p.add_argument("--max-anchors", type=_count, default=DEFAULT_MAX_ANCHORS, metavar="N",
                   help=f"refuse more anchors (default {DEFAULT_MAX_ANCHORS:,}, spec 8.6; 0: "
                        f"no limit)")
    p.add_argument("--max-values", type=_count, default=DEFAULT_MAX_VALUES, metavar="N",
                   help=f"refuse more anchors x channels (default {DEFAULT_MAX_VALUES:,}; 0: "
                        f"no limit)")


def _cmd_view(args: argparse.Namespace) -> int:
    import threading
    import urllib.parse

    from .inspect import inspect
    from .serve import find_viewer, serve_directory

    page = find_viewer(args.page)
    stream = os.path.abspath(args.file)
    if not os.path.isfile(stream):
        raise FileNotFoundError(f"{args.file} is not a file")
    with open(stream, "rb"):  # an unreadable file is an error before serving
        pass
    name = os.path.basename(stream)
    try:
        info = inspect(stream)
        summary = (f"format {info.version[0]}.{info.version[1]}, refine "
                   f"{info.refine.name.lower()}, {len(info.levels)} of {info.frame.num_levels} "
                   f"levels, " + (f"{info.levels[-1].lod_anchors:,} LoD anchors"
                                  if info.levels else "no complete level"))
    except ProgsError as error:  # served all the same: the page shows the error
        summary = f"invalid stream, the page will show it: {error}"
    query = {"src": f"stream/{name}"}
    if args.mbit:
        query["mbit"] = f"{args.mbit:g}"
    if args.rtt_ms:
        query["rtt"] = f"{args.rtt_ms:g}"
    with serve_directory(page, host=args.host, port=args.port,
                         files={f"/stream/{name}": stream}) as base:
        url = base + "?" + urllib.parse.urlencode(query, safe="/")
        print(f"serving {args.file} ({os.path.getsize(stream):,} bytes; {summary})")
        print(f"open {url}", flush=True)
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="progs-codec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("inspect", help="bit allocation per chunk, level and group")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    p.add_argument("--plot", metavar="OUT.png",
                   help="also draw the bit allocation per LoD as stacked bars (needs matplotlib)")
    p.set_defaults(run=_cmd_inspect)

    p = commands.add_parser("decode", help="decode a stream up to a LoD")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--max-lod", type=_positive_int, default=None, metavar="K",
                   help="decode levels 1..K (default all)")
    p.add_argument("--strict", action="store_true", help="a stream that stops short is an error")
    p.add_argument("-o", "--output", help="bake to a static 3DGS file: .ply, .spz or .splat")
    p.add_argument("--sh-degree", type=_sh_degree, default=None, metavar="D",
                   help="SH degree 0..3 of the baked colours (default 3; 0 for .splat)")
    _add_limits(p)
    p.set_defaults(run=_cmd_decode, subparser=p)

    p = commands.add_parser("render", help="render an orbit per LoD to PNGs and a contact sheet")
    p.add_argument("file", help=".progs stream (or a prefix of one)")
    p.add_argument("--lod", type=_positive_int, nargs="+", default=None, metavar="K",
                   help="LoDs to render (default: every decoded LoD)")
    p.add_argument("--orbit", type=_positive_int, default=8, metavar="N",
                   help="views per LoD (default 8)")
    p.add_argument("--size", type=_positive_int, default=256, metavar="PIXELS",
                   help="image width and height (default 256)")
    p.add_argument("--elevation", type=_elevation, default=20.0, metavar="DEGREES",
                   help="camera height above the horizon, -90..90 (default 20)")
    p.add_argument("--up", type=_up, default=None, metavar="AXIS",
                   help="the scene's up: +x, -x, +y, -y, +z, -z or X,Y,Z (default from the "
                        "stream's axis convention: -y for OpenCV, +y for OpenGL, +z for "
                        "Z-up)")
    p.add_argument("--backend", choices=("auto", "cpu", "gsplat"), default="auto")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER",
                   help="output folder (created if missing)")
    _add_limits(p)
    p.set_defaults(run=_cmd_render)

    p = commands.add_parser("truncate", help="a complete stream of LoDs 1..K (one static file "
                            "per rate), decoding bit for bit as the original's LoD K")
    p.add_argument("file", help=".progs stream (or a prefix holding level K)")
    p.add_argument("--max-lod", type=_positive_int, required=True, metavar="K",
                   help="keep levels 1..K")
    p.add_argument("-o", "--output", required=True, help="the .progs file to write")
    p.set_defaults(run=_cmd_truncate)

    p = commands.add_parser(
        "view", help="stream a .progs file to the browser viewer: a loopback server, prints "
        "the URL", description="Serves the streaming viewer (web/, built with `npm run build` there) and "
        "the stream on a loopback server with byte ranges, and prints the page's URL. The page "
        "fetches the header with a Range request, then level by level, and shows each LoD as "
        "soon as it is decoded.")
    p.add_argument("file", help=".progs stream")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, the loopback)")
    p.add_argument("--port", type=_port, default=0, help="port (default 0: a free one)")
    p.add_argument("--mbit", type=_mbit, default=None, metavar="MBIT",
                   help="throttle the page's download to MBIT Mbit/s, for demos (default: none)")
    p.add_argument("--rtt-ms", type=_milliseconds, default=0.0, metavar="MS",
                   help="simulated round trip per request (default 0)")
    p.add_argument("--page", default=None, metavar="FOLDER",
                   help="the built viewer (default: web/dist of this checkout)")
    p.set_defaults(run=_cmd_view)

    # Listed for --help only: main() hands "conformance run ..." to the runner's own parser.
    p = commands.add_parser("conformance", help="run the conformance suite against a decoder: "
                            "conformance run --decoder CMD [--results out.json] ...")
    p.add_argument("action", choices=["run"])
    return parser


def _raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the writers' cleanup (files.atomic_path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["conformance", "run"]:
        from . import conformance

        return conformance.main(argv[2:])
    parser = build_parser()
    from ..render.images import attach_up_value   # lazily: numpy and PIL only when run
    args = parser.parse_args(attach_up_value(argv))
    if args.command == "decode":
        _check_decode_args(args.subparser, args)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return args.run(args)
    except BrokenPipeError:  # ``progs-codec inspect x | head``: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ProgsError, OSError) as error:
        print(f"progs-codec {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ProgsError) else 1
    except KeyboardInterrupt:
        print(f"progs-codec {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
