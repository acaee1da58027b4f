import sys

from searec.cli import main

sys.exit(main())
