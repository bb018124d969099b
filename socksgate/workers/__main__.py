"""
C{python -m socksgate.workers}: one worker process (see L{socksgate.workers._child}).
"""

import sys

from ._child import main

if __name__ == "__main__":
    sys.exit(main())
