"""`python -m hashee.cli ARGS` = `hashee ARGS`."""

import sys

from hashee.cli import main

sys.exit(main())
