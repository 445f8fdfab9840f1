"""`python -m litestream_vfs.cli` runs the `litestream-vfs` command."""

import sys

from . import main

sys.exit(main())
