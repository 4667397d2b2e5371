"""The "RingCX archive" page in the Airflow UI (issue 15 item 4): the coverage ledger as a calendar.

A plugin (:mod:`.plugin`) mounts a small FastAPI app (:mod:`.app`) in the API server and adds it to the
UI's Browse menu. Per sub-account it shows every day of a range as 24 hour cells whose stripes are the grid
windows coloured by state (:mod:`.calendar`), with totals, and drills down to a day's windows and to a
window's report, not-archived segments and S3 links. It reads the ledger's rollups through the ``aws``
connection (:mod:`.data`) and writes nothing; it relies on Airflow's own authentication and authorization.
"""
