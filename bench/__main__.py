"""`python -m bench [--quick] [--databases sqlite,postgresql,mariadb] [--peers LIST|none]
[--scale LIST|none] [--output FILE]`; docs/reference/bench.md describes them."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
