import sys

from providerkit.cli import main

sys.exit(main())
