"""`python -m tenku.world make ...`"""

import sys

from tenku.world.cli import main

sys.exit(main())
