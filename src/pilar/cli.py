"""The ``pilar`` command: Django's management commands with Pilar's settings.

``pilar migrate``, ``pilar check --deploy``, ``pilar seed``, ``pilar demo``, ``pilar serve``,
``pilar token``, ``pilar staff`` and ``pilar office`` are all management commands; see
``pilar help``.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilar.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
