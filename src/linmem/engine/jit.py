"""The one switch between compiled and interpreted kernels.

Every hot loop in linmem is a plain Python function decorated with :func:`njit`.
With numba installed it is compiled (and cached on disk); with
``NUMBA_DISABLE_JIT=1`` numba itself runs the same function as Python, so there
is a single implementation to read, test and debug.
"""

from __future__ import annotations

import numba

njit = numba.njit(cache=True, nogil=True)

hot = numba.njit(cache=True, nogil=True, _nrt=False)
"""For a hot loop that allocates nothing: compiled without numba's reference
counting. With it, each array handed to a helper, even an inlined one, is
increfed and decrefed around the call: two calls of atomic updates, some
10 to 20 ns a request (FIFO's replay of 10 M requests: 0.23 s with them,
0.08 s without). Arrays it receives are borrowed from its caller, which
keeps them alive."""

inline = numba.njit(cache=True, nogil=True, inline="always")
"""For the small helpers of a hot loop: numba puts their body into each
caller, whose flags (``hot``) it then compiles under."""
