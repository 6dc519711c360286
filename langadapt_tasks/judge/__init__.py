"""The LLM-as-judge engine of the MT-Bench tasks.

``settings`` reads the configuration (environment and task metadata),
``rubrics`` renders the jinja2 judge prompts and parses verdicts, ``client``
calls an OpenAI-compatible endpoint with retries, ``cache`` keeps verdicts in
SQLite, and ``engine`` judges a batch of answers concurrently.
"""
