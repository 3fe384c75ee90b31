"""linmem: Linux memory management, executable.

Importing the package is cheap: numba and the model load only when a machine is
built (``linmem.kernel.machine``), so the proc-reading tools start instantly.
"""

__version__ = "0.1.0"
