"""``python -m capacity`` runs the CLI."""

from capacity.cli.app import main

main()
