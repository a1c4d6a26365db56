"""``python -m memory``: run the memory service process (see memory/service.py)."""

import sys

from memory.service import main

sys.exit(main())
