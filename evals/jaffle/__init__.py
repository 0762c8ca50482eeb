"""The jaffle shop: a second eval domain (dbt's fictional coffee-and-jaffle chain, data from ``jafgen``).

Build a project with ``python -m evals.jaffle.warehouse DIR``; see ``evals/jaffle/README.md``.
"""
