"""``linmem schema``: the JSON Schema of the scenario format.

The schema is pydantic's, generated from the models that validate scenario
files (:mod:`linmem.workload.scenario`), with keys spelled as in YAML
(``memory.max``, ``vm.swappiness``, ``as``). Editors that know JSON Schema
(the YAML language server, for example) complete and check scenario files
with it. It describes the shape; the loader checks more (references
between steps, regions, files and cgroups; sysctl ranges). docs/scenario.md
describes the format in prose.
"""

from __future__ import annotations

import json

import click

def scenario_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    from linmem.workload.scenario import Scenario
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


@click.command("schema")
@click.option("--indent", type=click.IntRange(0, 8), default=2, show_default=True,
              help="Spaces of indentation (0: one line).")
def schema(indent):
    """Print the JSON Schema of the scenario format.

    \b
    Examples:
      linmem schema > scenario.schema.json
      # in a scenario file, for editors with the YAML language server:
      # yaml-language-server: $schema=scenario.schema.json
    """
    click.echo(json.dumps(scenario_schema(), indent=indent or None))
