"""python -m defectscope: the command line."""

from .cli import main

main()
