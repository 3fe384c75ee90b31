"""``linmem mrc TRACE --format F [--policy P] [--plot FILE.png] [--json]``: the
miss-ratio curve of a trace, the miss ratio at every cache size.

LRU's curve is exact and takes one pass (stack distances), or a sampled
pass with ``--shards RATE``; other policies replay the trace once per size,
at ``--points`` sizes spread log-uniformly, in parallel processes.
"""

from __future__ import annotations

import json
import os
import tempfile

import click

from linmem.cachesim import POLICIES
from linmem.commands.replay import FORMAT_HELP
from linmem.errors import InputError
from linmem.units import PAGE_SIZE


@click.command("mrc")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", required=True, metavar="F", help=FORMAT_HELP)
@click.option("--policy", "-p", default="lru", show_default=True,
              type=click.Choice(list(POLICIES)), help="The replacement policy.")
@click.option("--points", type=int, default=None, metavar="N",
              help="Cache sizes to report, log-uniform up to the distinct keys "
                   "(default 40 for LRU, where 0 reports every size at which the curve "
                   "steps; 16 replays for other policies).")
@click.option("--shards", type=float, default=None, metavar="RATE",
              help="LRU only: sample the keys at RATE (0 < RATE <= 1, e.g. 0.01), SHARDS.")
@click.option("--jobs", "-j", type=int, default=None, metavar="N",
              help="Other policies: replays at a time (default: one per CPU).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, metavar="FILE.png",
              help="Also draw the curve into FILE (PNG, SVG or PDF; needs matplotlib: "
                   "pip install 'linmem[plot]').")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: policy, requests, distinct, sampling_rate, "
                   "seconds, frames, miss_ratio.")
def mrc(trace, fmt, policy, points, shards, jobs, plot, as_json):
    """Print the miss-ratio curve of TRACE: the miss ratio at each cache size.

    \b
    Examples:
      linmem mrc app.oracleGeneral --format oracleGeneral --plot app-lru.png
      linmem mrc big.oracleGeneral.zst -f oracleGeneral --shards 0.01 --json
      linmem mrc app.lackey.zst --format lackey --policy arc --points 12
    """
    from linmem.cachesim import mrc as curves

    if shards is not None and not 0 < shards <= 1:
        raise InputError("--shards", f"the rate must be in (0, 1], got {shards}")
    if shards is not None and policy != "lru":
        raise InputError("--shards", f"samples LRU's one-pass curve; not for {policy}")
    if points is not None and points < (0 if policy == "lru" else 1):
        raise InputError("--points", f"must be at least {0 if policy == 'lru' else 1}, "
                         f"got {points}")
    if jobs is not None and jobs < 1:
        raise InputError("--jobs", f"must be at least 1, got {jobs}")
    if plot:
        _check_plot(plot)
    if policy == "lru":
        curve = curves.lru_curve(trace, fmt, 40 if points is None else points, shards or 1.0)
    else:
        curve = curves.multi_size(trace, fmt, policy, points or 16, jobs)
    if plot:
        _plot(curve, trace, plot)
    if as_json:
        click.echo(json.dumps(curve.as_dict()))
        return
    _print(curve)


def _print(curve) -> None:
    sampled = f", SHARDS at {curve.rate:g}" if curve.rate < 1 else ""
    click.echo(f"{curve.policy}: {curve.requests} requests, {curve.distinct} distinct keys"
               f"{sampled}; {curve.seconds:.3f} s")
    click.echo(f"{'frames':>12} {'MiB':>12} {'miss ratio':>10}")
    for frames, ratio in zip(curve.frames, curve.miss_ratio):
        click.echo(f"{frames:12d} {frames * PAGE_SIZE / 2**20:12.1f} {ratio:10.4f}")


def _check_plot(path: str) -> None:
    """Fail before the work: a format matplotlib cannot write, no directory
    to write to, or no matplotlib."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise InputError("--plot", f"{path!r}: name a .png, .svg or .pdf file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("--plot", f"no such directory: {folder}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot", "drawing needs matplotlib: pip install 'linmem[plot]'") \
            from None


def _plot(curve, trace: str, path: str) -> None:
    """Draw the curve into ``path``, written under a temporary name first."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(curve.frames, curve.miss_ratio, marker="o" if len(curve.frames) <= 40 else None,
            markersize=3)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cache size (frames of 4 KiB, or objects)")
    ax.set_ylabel("miss ratio")
    sampled = f", SHARDS {curve.rate:g}" if curve.rate < 1 else ""
    ax.set_title(f"{os.path.basename(trace)}: {curve.policy}{sampled}")
    ax.grid(True, which="both", alpha=0.3)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix="." + ext)
    os.close(fd)
    try:
        fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
