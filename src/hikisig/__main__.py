"""``python -m hikisig`` runs the command line."""

from hikisig.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module again: do not rerun
    main()
