"""``python -m searchsvc``."""

if __package__:
    from .cli import main
else:
    # Run as a file: gunicorn's USR2 upgrade re-executes ``python -m searchsvc serve`` as
    # ``python .../searchsvc/__main__.py serve``. Import the package from its parent, not
    # its modules as top-level names from this directory.
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = os.path.dirname(here)
    else:                               # (-P / PYTHONSAFEPATH: the script's directory is not there)
        sys.path.insert(0, os.path.dirname(here))
    from searchsvc.cli import main

raise SystemExit(main())
