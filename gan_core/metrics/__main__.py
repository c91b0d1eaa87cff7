"""``python -m gan_core.metrics``: see :mod:`gan_core.metrics.cli`."""
import sys

from .cli import main

sys.exit(main())
