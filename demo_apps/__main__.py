"""``python -m demo_apps``: the development provider and every web demo (see ``launcher``)."""

import sys

from demo_apps.launcher import main

if __name__ == "__main__":
    sys.exit(main())
