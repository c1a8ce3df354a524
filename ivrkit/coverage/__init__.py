"""Flow coverage: which edges of a flow's graph (`ivrkit.graph.model`) the tests took.

- `taken`   one finished call's trace → the edges and states it took; `move_edge` one move's
            edge (the worker publishes it live, for the dial pad's picture)
- `data`    the counts per flow, the `.ivrkit-coverage.json` file, and the text report
- `plugin`  the pytest plugin (`pytest --ivr-cov`), fed by every `FlowTester` call

`ivrkit graph FLOW --coverage .ivrkit-coverage.json` draws the untested edges in red.
"""
