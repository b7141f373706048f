"""``python -m hikisig`` runs the command line."""

from hikisig.cli import main

main()
