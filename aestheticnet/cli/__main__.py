"""``python -m aestheticnet.cli``: the same commands as the ``aestheticnet`` script."""

from aestheticnet.cli import main

main()
