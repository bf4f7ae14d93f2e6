import sys

from genseg_cli.cli import main

sys.exit(main())
