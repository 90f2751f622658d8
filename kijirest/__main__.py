"""`python -m kijirest` is `kijirest`."""

import sys

from kijirest.cli import main

sys.exit(main())
