import sys

from remotesign.cli.main import main

sys.exit(main())
