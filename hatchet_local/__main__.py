"""`python -m hatchet_local`: the command line, as the `hatchet-local` script runs it."""

from hatchet_local.cli import main

main()
