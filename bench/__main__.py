"""`python -m bench [--quick] [--databases sqlite,postgresql,mariadb] [--output FILE]`."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
