"""``linmem examples [NAME] [--show]``: the built-in example scenarios.

Without NAME, one line per example: its name and what it shows. With NAME,
the example's header (what happens, where to look); with ``--show`` its
whole YAML, ready to copy and change. ``linmem run NAME`` runs one.
"""

from __future__ import annotations

import click


@click.command("examples")
@click.argument("name", required=False)
@click.option("--show", is_flag=True, help="Print the example's whole YAML.")
def examples(name, show):
    """List the built-in example scenarios, or describe one.

    \b
    Examples:
      linmem examples
      linmem examples swap
      linmem examples oom-killer --show > mine.yaml
      linmem run oom-killer --out out/oom
    """
    from linmem.workload.examples import example, examples as all_examples

    if name is None:
        if show:
            raise click.UsageError("--show needs an example NAME")
        found = all_examples()
        width = max(len(e.name) for e in found)
        for e in found:
            click.echo(f"{e.name:<{width}}  {e.description}")
        return
    ex = example(name)
    if show:
        click.echo(ex.text, nl=False)
        return
    header = [line[1:].removeprefix(" ") for line in ex.text.splitlines()
              if line.startswith("#")]
    click.echo("\n".join(header))
    click.echo(f"\nRun it: linmem run {ex.name} --out out/{ex.name}")
