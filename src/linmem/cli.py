"""The ``linmem`` command.

Subcommands load lazily: ``linmem free`` imports only the proc parser and the
tool, never numpy's heavier users or numba, so it starts instantly. Every
subcommand lives in its own module and is registered in ``COMMANDS``; errors of
the user's input (:class:`linmem.errors.InputError`) become one line on stderr
and exit status 2 here, in one place.
"""

from __future__ import annotations

import importlib
import sys

import click

from linmem.errors import EXIT_BAD_INPUT, InputError

# name -> (module, attribute, one-line help). The module defines a click command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("linmem.commands.run", "run", "Run a scenario (default: the built-in one) and write its /proc tree."),
    "free": ("linmem.tools.free", "free", "Display amount of free and used memory, as procps-ng free."),
    "vmstat": ("linmem.tools.vmstat", "vmstat", "Report virtual memory statistics, as procps-ng vmstat."),
    "ps": ("linmem.tools.ps", "ps", "Report a snapshot of the processes, as procps-ng ps (--proc PATH)."),
    "pmap": ("linmem.tools.pmap", "pmap", "Report the memory map of processes, as procps-ng pmap (--proc PATH)."),
    "fincore": ("linmem.tools.fincore", "fincore", "Count pages of files in the page cache, as util-linux fincore (--run DIR)."),
    "smem": ("linmem.tools.smem", "smem", "Report USS, PSS and RSS per process from smaps, as smem 1.5 (--proc PATH)."),
    "cgtop": ("linmem.tools.cgtop", "cgtop", "Show memory cgroups ordered by memory, as systemd-cgtop -m (--run DIR or --sys PATH)."),
    "examples": ("linmem.commands.examples", "examples", "List the built-in example scenarios (linmem run NAME runs one)."),
    "schema": ("linmem.commands.schema", "schema", "Print the JSON Schema of the scenario format."),
    "capture": ("linmem.commands.capture", "capture", "Run a program under valgrind lackey; record its accesses and mappings for replay."),
    "trace": ("linmem.commands.trace", "trace", "Convert memory-access traces (lackey, ...) to the native format; count what they hold."),
    "replay": ("linmem.commands.replay", "replay", "Replay a trace on a cache (LRU, FIFO, CLOCK, ARC, 2Q, LIRS, OPT): hits and misses."),
    "mrc": ("linmem.commands.mrc", "mrc", "Miss-ratio curve of a trace: exact LRU in one pass (or SHARDS), other policies per size."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="linmem")
def cli():
    """linmem: Linux memory management, executable.

    Models the kernel's memory manager (zones, watermarks, the buddy allocator and
    what is built on them) and shows it the way Linux does, through /proc and the
    tools that read it.
    """


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, mapping input errors to one line and exit 2."""
    try:
        # Without standalone mode click returns the code a command exits with.
        rv = cli.main(args=argv, prog_name="linmem", standalone_mode=False)
    except InputError as err:
        click.echo(f"linmem: {err}", err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.UsageError as err:
        # one line, as for any bad input: the command and what is wrong
        command = err.ctx.command_path if err.ctx else "linmem"
        click.echo(f"{command}: {err.format_message()}", err=True)
        return EXIT_BAD_INPUT
    except click.ClickException as err:
        err.show()
        return EXIT_BAD_INPUT if err.exit_code == 2 else err.exit_code
    except click.exceptions.Abort:
        click.echo("linmem: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
