import sys

from sense.cli import main

sys.exit(main())
