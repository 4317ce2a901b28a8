"""``python -m clients.loadtest``: see :mod:`clients.loadtest.cli`."""

import sys

from clients.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
