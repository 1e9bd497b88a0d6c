"""``python -m resnet_tools.cli``: the same as the ``resnet`` command."""

import sys

from resnet_tools.cli.main import main

sys.exit(main())
