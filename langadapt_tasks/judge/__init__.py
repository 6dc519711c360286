"""The LLM-as-judge engine of the MT-Bench tasks.

``settings`` reads the configuration (environment and task metadata),
``rubrics`` builds the judge prompts and parses verdicts, ``client`` calls an
OpenAI-compatible endpoint with retries and a per-request deadline, ``cache``
keeps verdicts in SQLite, ``engine`` judges a batch of answers concurrently,
``verdicts`` reads and writes verdict files (and says which answers they cover)
and ``rejudge`` is ``langadapt judge``.
"""
