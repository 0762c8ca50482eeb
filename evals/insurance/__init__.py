"""Harbor Mutual: a third eval domain, a small property & casualty insurer (synthetic, stdlib ``random``).

Build a project with ``python -m evals.insurance.warehouse DIR``; see ``evals/insurance/README.md``.
"""
