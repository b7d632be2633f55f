"""``python -m cnsim``: the same as the ``cnsim`` console script."""

import sys

from cnsim.cli import main

if __name__ == "__main__":
    sys.exit(main())
