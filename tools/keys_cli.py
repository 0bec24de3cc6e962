"""``hil keys``: CURVE key pairs for nodes that listen on the network."""

from __future__ import annotations

from pathlib import Path

import click

from bus.endpoints import ROLES
from bus.key_privacy import GITIGNORE, IGNORE_RULE
from bus.security import CLIENT_IDENTITY, PRIVATE_DIR, PUBLIC_DIR, generate_keys


@click.group()
def keys() -> None:
    """Make the keys that let nodes on several machines trust each other.

    \b
    Example:
      hil keys generate ~/roarm-keys
    """


@keys.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="Key pair to make (repeatable) [default: every role and 'client'].")
@click.option("--force", is_flag=True,
              help="Write even inside a git work tree (adding DIRECTORY/.gitignore for private/), and replace "
                   "existing key pairs (machines holding the old ones are locked out).")
def generate(directory: Path, names: tuple[str, ...], force: bool) -> None:
    """Make a CURVE key pair per role (robot, policy, runner, recorder) and for
    command-line clients, in DIRECTORY/public and DIRECTORY/private.

    A node then binds tcp:// on a network address only with keys, and accepts
    only peers whose public key is in DIRECTORY/public.

    Secret keys are written 0600 in a 0700 folder. DIRECTORY inside a git
    work tree is refused (one `git add -A` would publish the keys) unless
    --force, which also writes DIRECTORY/.gitignore ignoring private/.

    \b
    Examples:
      hil keys generate ~/roarm-keys
      hil keys generate ~/roarm-keys --name bench-laptop
      hil node hw --endpoints run.json --keys ~/roarm-keys
    """
    wanted = list(names) or [*ROLES, CLIENT_IDENTITY]
    try:
        made = generate_keys(directory, wanted, force=force, in_work_tree=force)
    except OSError as exc:
        raise click.ClickException(f"cannot write keys to {directory}: {exc.strerror or exc}") from None
    for path in made:
        click.echo(f"wrote {path}")
    ignore = directory / GITIGNORE
    if ignore.exists() and IGNORE_RULE in ignore.read_text().split():
        click.echo(f"{ignore} keeps {IGNORE_RULE} out of git")
    root = directory.resolve()
    click.echo(
        f"\nWhere to put them:\n"
        f"  - copy {root / PUBLIC_DIR}/ to every machine of the run (the keys a node accepts);\n"
        f"  - copy {root / PRIVATE_DIR}/<name>.key_secret only to the machine that runs <name>\n"
        f"    (a node uses its role's key, command-line tools use '{CLIENT_IDENTITY}');\n"
        f"  - start every node with --keys {root} (or put \"security\": {{\"keys\": \"{root}\"}}\n"
        f"    in the endpoints file). Keep private/ secret: a key there lets its holder command the arm."
    )
