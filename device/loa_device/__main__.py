"""``python -m loa_device``: the same as the ``loa-device`` command."""

from __future__ import annotations

import sys

from loa_device.cli import main

sys.exit(main())
