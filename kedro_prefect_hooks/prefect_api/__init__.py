"""Which Prefect API, and talking to it: the layer under registration, local processes and triggering.

`find.find_api` decides which API a session or a command talks to (prefect.yml, then
Prefect's own settings in Prefect's order, then this project's local server);
`settings.py` reads and checks those settings without importing prefect; `client.py` is
the REST client, standard library only; `errors.py` what every failure becomes.
"""
