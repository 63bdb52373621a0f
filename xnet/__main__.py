"""`python -m xnet` runs the command line."""

from xnet.cli import main

main()
