from studylib.platform.cli import main

raise SystemExit(main())
