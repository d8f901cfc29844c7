import sys

from timemory.service.cli import main

sys.exit(main())
