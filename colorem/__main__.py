import sys

from colorem.cli import main

sys.exit(main())
