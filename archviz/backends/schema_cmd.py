"""`archviz schema`: the JSON Schema of spec files (archviz/backends/jsonschema.py)."""
from __future__ import annotations

import click

from archviz.clikit import CONTEXT, handle_errors, preflight, write_atomic


@click.command("schema", context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of the terminal.")
@handle_errors
def schema(output):
    """The JSON Schema (draft-07) of spec files, generated from the op registry: every op,
    its attributes with their types, defaults and docs. Editors with a YAML language server
    (VS Code's YAML extension, for one) complete and check a spec whose first line is

    \b
      # yaml-language-server: $schema=archviz.schema.json

    The schema is looser than `archviz validate`: a ${...} expression is accepted wherever a
    value is, block calls take any keys, and references and shapes are not checked. A copy
    ships inside the package (archviz/schema/spec.schema.json).

    \b
    Examples:
      archviz schema -o archviz.schema.json
      archviz schema | python -m json.tool | head
    """
    from archviz.backends.jsonschema import schema_text
    preflight(output)
    text = schema_text()
    if output:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
