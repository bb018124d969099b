"""
C{python -m socksgate.workers}: one worker process (see L{socksgate.workers._child}).
"""

import sys

from ._child import main

sys.exit(main())
