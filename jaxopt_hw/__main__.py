import sys

from jaxopt_hw.cli import main

sys.exit(main())
