import sys

from ebgan.cli import main

sys.exit(main())
