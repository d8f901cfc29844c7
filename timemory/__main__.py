import sys

from timemory.service._cli import main

sys.exit(main())
