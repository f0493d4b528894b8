"""``python -m fakellm`` is the ``fakellm`` command."""

import sys

from fakellm._cli import main

sys.exit(main())
