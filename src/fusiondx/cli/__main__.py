"""`python -m fusiondx.cli`: the `fusiondx` command."""

from __future__ import annotations

from fusiondx.cli import main

# The guard matters: worker processes of `study --jobs N` re-import the main module.
if __name__ == "__main__":
    main()
