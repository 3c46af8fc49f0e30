"""`python -m tenku.serve [options]`, the same as `tenku serve [options]`."""

import sys

from tenku.serve.cli import main

sys.exit(main())
