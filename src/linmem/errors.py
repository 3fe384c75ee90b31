"""Errors that reach the user as one line and exit status 2.

Every problem with the user's input (scenario, trace, option) is raised as an
:class:`InputError` naming *where* (file, line, key path or byte offset) and
*what* is wrong. The CLI turns it into ``linmem: WHERE: WHAT`` on stderr and exit
status 2, with no traceback and nothing half-written.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class LinmemError(Exception):
    """Base class of the errors linmem raises on purpose."""


class InputError(LinmemError):
    """Bad input from the user: a scenario, a trace, an option or a proc tree.

    ``where`` is a location such as ``"scen.yaml:12: machine.ram"``; ``what``
    says what is wrong, with the offending value.
    """

    def __init__(self, where: str, what: str):
        self.where = where
        self.what = what
        super().__init__(f"{where}: {what}" if where else what)
