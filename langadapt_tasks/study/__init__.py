"""``langadapt study``: the config, the embedded model and the train-evaluate-judge-report run."""
