"""The one switch between compiled and interpreted kernels.

Every hot loop in linmem is a plain Python function decorated with :func:`njit`.
With numba installed it is compiled (and cached on disk); with
``NUMBA_DISABLE_JIT=1`` numba itself runs the same function as Python, so there
is a single implementation to read, test and debug.
"""

from __future__ import annotations

import numba

njit = numba.njit(cache=True, nogil=True)
