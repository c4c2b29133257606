import sys

from firepbt.cli import main

sys.exit(main())
