import sys

from tenku.cli import main

sys.exit(main())
