from langadapt_tasks.cli import main

raise SystemExit(main())
