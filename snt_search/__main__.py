"""``python -m snt_search`` is the ``snt-search`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
