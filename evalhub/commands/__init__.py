"""Subcommands of the ``evalhub`` CLI, one module per family (see ``evalhub.cli.COMMANDS``)."""
