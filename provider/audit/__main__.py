"""``python -m provider.audit``: see ``provider.audit.cli``."""

from provider.audit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
