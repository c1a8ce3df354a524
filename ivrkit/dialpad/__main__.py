"""`python -m ivrkit.dialpad`: the dial pad server without the main `ivrkit` CLI."""

import sys

from ivrkit.dialpad.server import main

sys.exit(main())
