"""Triggering and following runs (`kedro prefect run [--wait]`).

`start.py` creates the flow run of the deployment this env registered, its parameters
from `kedro run`'s options; `selection.py` counts the tasks the run will make (before it
is created, so a bad filter creates nothing); `watch.py` follows the run to its end;
`progress.py` shows it (a bar on a terminal, plain lines elsewhere).
"""
