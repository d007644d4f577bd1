"""``python -m socketeer``: the command line (see :mod:`socketeer.cli`)."""

import sys

from . import cli

sys.exit(cli.main())
