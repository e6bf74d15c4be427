"""Click commands that live outside `mtl_runner.cli`, one module per family.

`inspect`: `mtl runs`, `mtl show`, `mtl compare` (they read run directories; no TensorFlow).
"""

from __future__ import annotations

import click

# The same convention as `mtl train --results` in mtl_runner.cli (kept here so that importing
# a command module never imports the CLI module, which imports the commands).
results_option = click.option(
    "--results", "results", envvar="MTL_RESULTS", default="results", show_default=True,
    type=click.Path(file_okay=False), help="Results folder (or set MTL_RESULTS).")
