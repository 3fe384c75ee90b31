"""GFP flags: what an allocation may do and where it may come from.

Bit values of include/linux/gfp_types.h (Linux 6.18), the composite masks
callers use, and the two translations the allocator makes from them:
``gfp_zone`` (the highest zone the request may use) and ``gfp_migratetype``.

The kernel's ``__GFP_X`` bits are spelled ``_GFP_X`` here: Python mangles
double-underscore names used inside class bodies.
"""

from __future__ import annotations

_GFP_DMA = 1 << 0
_GFP_HIGHMEM = 1 << 1
_GFP_DMA32 = 1 << 2
_GFP_MOVABLE = 1 << 3
_GFP_RECLAIMABLE = 1 << 4
_GFP_HIGH = 1 << 5
_GFP_IO = 1 << 6
_GFP_FS = 1 << 7
_GFP_ZERO = 1 << 8
_GFP_DIRECT_RECLAIM = 1 << 10
_GFP_KSWAPD_RECLAIM = 1 << 11
_GFP_WRITE = 1 << 12
_GFP_NOWARN = 1 << 13
_GFP_RETRY_MAYFAIL = 1 << 14
_GFP_NOFAIL = 1 << 15
_GFP_NORETRY = 1 << 16
_GFP_MEMALLOC = 1 << 17
_GFP_COMP = 1 << 18
_GFP_NOMEMALLOC = 1 << 19
_GFP_HARDWALL = 1 << 20
_GFP_THISNODE = 1 << 21
_GFP_ACCOUNT = 1 << 22

_GFP_RECLAIM = _GFP_DIRECT_RECLAIM | _GFP_KSWAPD_RECLAIM
GFP_ATOMIC = _GFP_HIGH | _GFP_KSWAPD_RECLAIM
GFP_KERNEL = _GFP_RECLAIM | _GFP_IO | _GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | _GFP_ACCOUNT
GFP_NOWAIT = _GFP_KSWAPD_RECLAIM | _GFP_NOWARN
GFP_NOIO = _GFP_RECLAIM
GFP_NOFS = _GFP_RECLAIM | _GFP_IO
GFP_USER = _GFP_RECLAIM | _GFP_IO | _GFP_FS | _GFP_HARDWALL
GFP_DMA = _GFP_DMA
GFP_DMA32 = _GFP_DMA32
GFP_HIGHUSER = GFP_USER | _GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | _GFP_MOVABLE
GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | _GFP_COMP | _GFP_NOMEMALLOC
                       | _GFP_NOWARN) & ~_GFP_RECLAIM
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | _GFP_DIRECT_RECLAIM
GFP_PGTABLE_USER = GFP_KERNEL_ACCOUNT | _GFP_ZERO

NAMES = {
    "GFP_KERNEL": GFP_KERNEL, "GFP_KERNEL_ACCOUNT": GFP_KERNEL_ACCOUNT,
    "GFP_ATOMIC": GFP_ATOMIC, "GFP_NOWAIT": GFP_NOWAIT, "GFP_NOIO": GFP_NOIO,
    "GFP_NOFS": GFP_NOFS, "GFP_USER": GFP_USER, "GFP_DMA": GFP_DMA | GFP_KERNEL,
    "GFP_DMA32": GFP_DMA32 | GFP_KERNEL, "GFP_HIGHUSER": GFP_HIGHUSER,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE, "GFP_TRANSHUGE": GFP_TRANSHUGE,
    "GFP_TRANSHUGE_LIGHT": GFP_TRANSHUGE_LIGHT,
}


def gfp_zone(gfp: int, zone_names: tuple[str, ...]) -> int:
    """Index of the highest zone a request may use (include/linux/gfp.h gfp_zone).

    _GFP_DMA -> DMA; _GFP_DMA32 -> DMA32 (Normal where there is none);
    _GFP_HIGHMEM -> HighMem (Normal on 64-bit); _GFP_HIGHMEM|_GFP_MOVABLE ->
    Movable; otherwise Normal.
    """
    def idx(name: str) -> int:
        return zone_names.index(name) if name in zone_names else zone_names.index("Normal")

    if gfp & _GFP_DMA:
        return idx("DMA")
    if gfp & _GFP_DMA32:
        return idx("DMA32")
    if gfp & _GFP_HIGHMEM:
        return idx("Movable") if gfp & _GFP_MOVABLE else idx("HighMem")
    return idx("Normal")


def gfp_migratetype(gfp: int) -> int:
    """Models gfp_migratetype(): MOVABLE, RECLAIMABLE, else UNMOVABLE."""
    if gfp & _GFP_MOVABLE:
        return 1
    if gfp & _GFP_RECLAIMABLE:
        return 2
    return 0
