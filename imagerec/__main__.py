"""``python -m imagerec …`` runs the ``imagerec`` console command."""

from imagerec.cli import main

raise SystemExit(main())
