"""`python -m fusiondx`: the `fusiondx` command."""

from __future__ import annotations

from fusiondx.cli import main

if __name__ == "__main__":
    main()
