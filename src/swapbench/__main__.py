"""`python -m swapbench`."""

from swapbench.cli import main

main()
