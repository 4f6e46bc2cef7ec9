from probzoo.cli import main

raise SystemExit(main())
