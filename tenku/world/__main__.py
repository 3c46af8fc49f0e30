"""`python -m tenku.world make ...`"""

import sys

from .cli import main

sys.exit(main())
