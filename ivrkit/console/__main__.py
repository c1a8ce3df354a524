"""`python -m ivrkit.console`: the console phone without the main `ivrkit` CLI."""

import sys

from ivrkit.console.cli import main

sys.exit(main())
