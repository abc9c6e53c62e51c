import sys

from litdata.cli import main

sys.exit(main())
