"""Bit allocation per LoD as stacked bars (``progs-codec inspect FILE --plot out.png``).

The bar of LoD ``k`` is the prefix a client fetches for it (``cumulative_bytes``, spec 8.3),
split into the header's parts (``hash_grid``, ``context_mlp``, ``gaussian_mlps``, ...), the
structure of levels ``1..k`` and their three attribute groups (spec 4.1, 7). ``other`` holds
the file header, chunk framing and section lengths, so the bars add up to the prefix exactly.

matplotlib is optional (``pip install progs-codec[bench]``) and imported only when drawing;
without it :func:`plot_bit_allocation` raises :class:`PlotError`, which says what to install.
Drawing goes through matplotlib's object API (no ``pyplot``), so no global state is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..errors import ProgsError
from ..files import atomic_path, check_output_file
from ..model import ATTRIBUTE_GROUPS
from .inspect import StreamInfo

__all__ = ["PlotError", "FORMATS", "bit_allocation", "plot_bit_allocation", "check_plot_output",
           "new_figure", "save_figure"]

#: Image formats a plot can be written in, by suffix.
FORMATS = (".png", ".svg", ".pdf")

# One colour per component, stable across plots: header parts in greys and blues,
# structure in green, attribute groups in warm colours.
_COLOURS = {"hash_grid": "#4c72b0", "context_mlp": "#8172b3", "gaussian_mlps": "#64b5cd",
            "other": "#b0b0b0", "structure": "#55a868", "feature": "#dd8452",
            "scaling": "#c44e52", "offsets": "#937860"}
_SPARE = ("#da8bc3", "#8c8c8c", "#ccb974", "#17becf")


class PlotError(ProgsError, ImportError):
    """Plotting needs matplotlib, which is not installed (like :class:`RenderError` for
    gsplat: a request this installation cannot serve)."""


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotError("plotting needs matplotlib: pip install 'progs-codec[bench]' "
                        "(or pip install matplotlib)") from exc
    return Figure, FigureCanvasAgg


def check_plot_output(path: str | Path) -> Path:
    """Checks, before any work, that a plot can be written at ``path``.

    Raises:
        PlotError: matplotlib is missing, or the suffix is not one of :data:`FORMATS`.
        OSError: the folder does not exist or is not writable (``check_output_file``).
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PlotError(f"{path}: unknown plot format {path.suffix!r}; expected one of "
                        f"{', '.join(FORMATS)}")
    _matplotlib()
    return check_output_file(path)


def new_figure(width: float = 7.0, height: float = 4.5):
    """A matplotlib ``Figure`` with an Agg canvas, outside ``pyplot``'s global state.

    Raises:
        PlotError: matplotlib is missing.
    """
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(width, height), layout="constrained")
    canvas_class(figure)
    return figure


def save_figure(figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Writes ``figure`` to ``path`` atomically; the format follows the suffix (:data:`FORMATS`).
    """
    path = check_plot_output(path)
    fmt = path.suffix.lstrip(".").lower()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi)
    return path


def bit_allocation(info: StreamInfo | Mapping) -> tuple[list[int], dict[str, list[int]]]:
    """Bytes of each LoD's prefix per component: ``(lods, {component: [bytes per LoD]})``.

    Args:
        info: :func:`progs_codec.inspect`'s result or its JSON (``inspect --json``).

    Components are the header parts in the stream's order, ``structure``, then the attribute
    groups; every LoD's components sum to its ``cumulative_bytes``.

    Example:
        >>> from progs_codec import encode, inspect
        >>> from progs_codec.testing import synthetic_model
        >>> info = inspect(encode(synthetic_model(200, 2, seed=0, attribute_coding="raw")))
        >>> lods, parts = bit_allocation(info)
        >>> lods, list(parts)[-4:]
        ([1, 2], ['structure', 'feature', 'scaling', 'offsets'])
        >>> sum(p[1] for p in parts.values()) == info.levels[1].cumulative_bytes
        True
    """
    data = info.to_dict() if isinstance(info, StreamInfo) else info
    header = dict(data["header_bytes"])
    parts: dict[str, list[int]] = {name: [] for name in header}
    parts.setdefault("other", [])
    parts["structure"] = []
    for group in ATTRIBUTE_GROUPS:
        parts[group] = []
    lods = []
    running = {name: 0 for name in parts}
    for level in data["levels"]:
        lods.append(int(level["lod"]))
        running["structure"] += int(level["structure_bytes"])
        payload = int(level["structure_bytes"])
        for group in ATTRIBUTE_GROUPS:
            running[group] += int(level["attribute_bytes"][group])
            payload += int(level["attribute_bytes"][group])
        running["other"] += int(level["bytes"]) - payload          # framing, section lengths
        for name in parts:
            fixed = header.get(name, 0)
            parts[name].append(fixed + running[name])
    return lods, parts


def plot_bit_allocation(info: StreamInfo | Mapping, path: str | Path | None = None, *,
                        title: str | None = None, ax=None):
    """Draws the bit allocation of every LoD as stacked bars (kB) and saves it to ``path``.

    Args:
        info: :func:`progs_codec.inspect`'s result or its JSON.
        path: output image (``.png``, ``.svg``, ``.pdf``); ``None`` draws without saving.
        title: the axes' title (default: total size and LoD count).
        ax: draw into these matplotlib axes instead of a new figure (``path`` then saves the
            axes' figure).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        PlotError: matplotlib is missing.
    """
    lods, parts = bit_allocation(info)
    if ax is None:
        figure = new_figure(max(4.0, 1.0 + 0.9 * len(lods)), 4.5)
        ax = figure.add_subplot()
    else:
        _matplotlib()
        figure = ax.figure
    bottom = [0.0] * len(lods)
    spare = iter(_SPARE)
    for name, values in parts.items():
        if not any(values):
            continue
        kb = [v / 1e3 for v in values]
        ax.bar([str(k) for k in lods], kb, bottom=bottom, label=name,
               color=_COLOURS.get(name) or next(spare, None), width=0.7)
        bottom = [b + v for b, v in zip(bottom, kb)]
    for i, total in enumerate(bottom):
        ax.annotate(f"{total:.1f}", (i, total), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xlabel("LoD (levels 1..k)")
    ax.set_ylabel("bytes to decode LoD k (kB)")
    total_bytes = (info.to_dict() if isinstance(info, StreamInfo) else info)["total_bytes"]
    ax.set_title(title if title is not None
                 else f"bit allocation, {total_bytes / 1e3:.1f} kB, {len(lods)} LoDs")
    ax.set_ylim(0, max(bottom, default=1.0) * 1.1 or 1.0)
    ax.legend(fontsize=8, loc="upper left", reverse=True)
    if path is not None:
        save_figure(figure, path)
    return figure

