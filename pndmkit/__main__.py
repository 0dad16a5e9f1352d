from pndmkit.cli import main

raise SystemExit(main())
