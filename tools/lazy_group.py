"""A click group that imports a subcommand's module only when that subcommand is used.

Every node is started as ``hil node ...`` (by the runner, the benchmarks and
by hand), so what ``hil`` imports before the command runs is paid at every
node start-up. With the subcommands named here as ``"module:attribute"``,
``hil node sim`` loads the sim node and not the bag tools, benchmarks or
scenario runner. Each module still has all its imports at its top; only the
choice of which subcommand module to load is made at run time.
"""

from __future__ import annotations

import importlib

import click

from bus.cli_options import HilGroup


class LazyGroup(HilGroup):
    """``lazy``: subcommand name -> ``"package.module:attribute"`` of its click command."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command
